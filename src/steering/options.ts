// Command-line pieces every steering command shares: --actor/--reason, and argument checks
// that fail with one line (commander's own argParser errors print a second, help line).
import type { Command } from 'commander';
import { actorDefault, printable } from '../args.js';
import { usageError } from '../errors.js';
import type { Who } from './common.js';
import { FLAG_NAME } from './flags.js';

const MAX_REASON = 500;
const ACTOR = /^[^\u0000-\u001f\u007f]{1,100}$/;

export function withWho(cmd: Command): Command {
  return cmd
    .option('--actor <name>', 'who makes the change (default: the OS user)')
    .option('--reason <text>', 'why (kept in the history)');
}

export function who(opts: { actor?: string; reason?: string }): Who {
  const actor = opts.actor ?? actorDefault();
  if (!ACTOR.test(actor) || actor.trim() === '')
    throw usageError(`--actor "${printable(actor)}" is invalid: use 1 to 100 printable characters`);
  const reason = opts.reason?.trim();
  if (reason !== undefined && reason.length > MAX_REASON)
    throw usageError(`--reason is ${reason.length} characters; at most ${MAX_REASON}`);
  if (reason !== undefined && /[\u0000-\u0008\u000b-\u001f\u007f]/.test(reason))
    throw usageError('--reason contains control characters');
  return { actor, reason: reason || undefined };
}

export function wholeNumber(name: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw.trim()))
    throw usageError(`${name} must be a whole number from ${min} to ${max}, got "${printable(raw)}"`);
  const n = Number(raw);
  if (n < min || n > max) throw usageError(`${name} must be from ${min} to ${max}, got ${n}`);
  return n;
}

export function checkFlagName(name: string): string {
  if (!FLAG_NAME.test(name))
    throw usageError(`flag name "${printable(name)}" is invalid: a letter, then letters, digits, _ . - (at most 100)`);
  return name;
}

const JOB_TYPE = /^[a-z][a-z0-9_]{0,62}$/;
export function checkJobType(name: string): string {
  if (!JOB_TYPE.test(name))
    throw usageError(`job type "${printable(name)}" is invalid: lower-case letters, digits and _ (for example anchor)`);
  return name;
}

export const DECLARES_HELP =
  '\n\nA type of the configured pipeline (--pipeline, CANON_PIPELINE, else the example) that no worker has declared yet is declared first.';
export const EXIT_HELP = '\nExit codes: 0 ok, 2 bad input or unknown name (nothing changed), 3 database unavailable.';
