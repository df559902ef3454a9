import type { Command } from 'commander';
import type { Action } from '../cli.js';

export type Run = (fn: Action) => (...args: any[]) => Promise<void>;
export type Register = (program: Command, run: Run) => void;

/** Help text that starts the examples section of a command (every command has one). */
export function examples(...lines: string[]): string {
  return '\nExamples:\n' + lines.map((l) => `  $ ${l}`).join('\n');
}
