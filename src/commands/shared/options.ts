// Command-line options that several commands declare the same way. They live here, below the
// command modules, so that no command imports another for them.
import { type Command, Option } from 'commander';
import { THRESHOLD_NAMES } from '../../observe/thresholds.js';

/** `--threshold name=value`: health, alerts, diagnose, serve and watch. */
export const thresholdOption = () =>
  new Option('--threshold <name=value...>', `override a threshold (${THRESHOLD_NAMES.join(', ')})`);

/** `--pipeline PATH`: every command that runs or reads what a pipeline module declares. */
export const pipelineOption = () =>
  new Option('--pipeline <path>', 'pipeline module (default: CANON_PIPELINE, else the example pipeline)');

/** The dead-job filters as commander parses them (`canon dead-jobs`, `canon jobs retry | cancel`). */
export interface DeadOpts {
  limit?: string;
  sinceHours?: string;
  type?: string;
  correlationId?: string;
  reason?: string;
}

/** The filters under the names parseDeadFilters reads. */
export const deadRaw = (o: DeadOpts) => ({
  limit: o.limit,
  since_hours: o.sinceHours,
  type: o.type,
  correlation_id: o.correlationId,
  reason: o.reason,
});

/**
 * The commands that only read, so may read from the read URL (--read-url, else CANON_READ_URL):
 * a streaming replica takes their load off the primary. cli.ts refuses --read-url for every
 * other command: a write always goes to DATABASE_URL.
 */
const readOnlyCommands = new Set<Command>();

/** Marks `cmd` as one that only reads (see readOnlyCommands); returns it for chaining. */
export function readsOnly(cmd: Command): Command {
  readOnlyCommands.add(cmd);
  return cmd;
}

/** The full name of a command, e.g. "jobs retry". */
export const commandPath = (cmd: Command): string => {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
};

/** Why `cmd` may not take --read-url, or undefined when it may. */
export function readUrlRefusal(cmd: Command): string | undefined {
  if (readOnlyCommands.has(cmd)) return undefined;
  const readers = [...readOnlyCommands].map(commandPath).sort().join(', ');
  return `--read-url is only for the commands that read (${readers}); canon ${commandPath(cmd)} uses DATABASE_URL, where every write goes: drop --read-url`;
}
