// The shape of a command module: `register` adds its commands to the program, and wraps each
// body with `run` (src/cli.ts), which builds its context and turns errors into exit codes.
import type { Command } from 'commander';
import type { Ctx } from '../context.js';

/** A command body: the context, then commander's arguments; returns the exit code (0 when undefined). */
// biome-ignore lint/suspicious/noExplicitAny: each body types the arguments its command declares
export type Action = (ctx: Ctx, ...args: any[]) => Promise<number | undefined>;
// biome-ignore lint/suspicious/noExplicitAny: commander calls the action with the command's arguments
export type Run = (fn: Action) => (...args: any[]) => Promise<void>;
export type Register = (program: Command, run: Run) => void;

/** Help text that starts the examples section of a command (every command has one). */
export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}`;
}
