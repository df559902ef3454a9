// The canon binary: commander wiring, one module per command under src/commands/, and the
// single place where errors become one line on stderr and an exit code.
import { Command, CommanderError } from 'commander';
import { commands } from './commands/index.js';
import { readUrlRefusal } from './commands/shared/options.js';
import type { Action } from './commands/types.js';
import { Ctx, type GlobalOptions } from './context.js';
import { redact as redactUrl } from './db/url.js';
import { CanonError, coerceError, EXIT, PG, pgCode, usageError } from './errors.js';
import { version } from './paths.js';

/** Wraps a command body: builds its context, maps errors, always closes the database. */
export function runner(state: { code: number }) {
  return (fn: Action) =>
    // biome-ignore lint/suspicious/noExplicitAny: commander passes each command's own arguments, typed by its body
    async (...args: any[]) => {
      const cmd = args[args.length - 1] as Command;
      const opts = cmd.optsWithGlobals() as GlobalOptions;
      const ctx = new Ctx(opts);
      try {
        // a command that writes never takes the read URL (a replica would refuse its writes, or
        // worse, a read from it could feed a write with stale state)
        const refusal = opts.readUrl !== undefined ? readUrlRefusal(cmd) : undefined;
        if (refusal) throw usageError(refusal);
        const code = await fn(ctx, ...args);
        state.code = typeof code === 'number' ? code : EXIT.OK;
      } catch (e) {
        state.code = reportError(e, ctx.debug);
      } finally {
        await ctx.close();
      }
    };
}

export function reportError(e: unknown, debug: boolean): number {
  const err = coerceError(e);
  const url = process.env.DATABASE_URL;
  const redact = (text: string) => redactUrl(redactUrl(text, url), process.env.CANON_READ_URL);
  if (err instanceof CanonError) {
    process.stderr.write(`canon: ${redact(err.message)}\n`);
    if (debug && err.stack) process.stderr.write(`${redact(err.stack)}\n`);
    return err.exitCode;
  }
  if (pgCode(e) === PG.READ_ONLY_TRANSACTION) {
    // DATABASE_URL names a standby (or a read-only server): writes need the primary
    process.stderr.write(
      `canon: ${redact(err.message).split('\n')[0]}: the server refused a write (is DATABASE_URL a standby?); point DATABASE_URL at the primary, and a replica at CANON_READ_URL for the commands that only read\n`,
    );
    return EXIT.DATABASE;
  }
  if (pgCode(e) === PG.INSUFFICIENT_PRIVILEGE) {
    // a least-privilege role (migrations/0006_privileges.sql) ran a command beyond its grants: say so, not "unexpected"
    process.stderr.write(
      `canon: ${redact(err.message).split('\n')[0]}: this database user lacks the privilege; run it as a member of the role it needs (canon_operator for steering and retries, the owner for migrations)\n`,
    );
    return EXIT.FAILURE;
  }
  process.stderr.write(
    `canon: unexpected error: ${redact(err.message).split('\n')[0]} (run with --debug for details)\n`,
  );
  if (debug && err.stack) process.stderr.write(`${redact(err.stack)}\n`);
  return EXIT.FAILURE;
}

/** Commander's usage errors as one line: "canon: <what is wrong> (Did you mean …?) — see --help". */
function writeUsageError(text: string): void {
  if (!text.startsWith('error:')) {
    process.stderr.write(text);
    return;
  }
  const line = text
    .replace(/^error:\s*/, '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ');
  process.stderr.write(`canon: ${line} (see --help)\n`);
}

export function buildProgram(state: { code: number }): Command {
  const program = new Command('canon')
    .description('One ledger, one queue, one gateway: business pipelines on Postgres, traced end to end.')
    .version(version, '-V, --version')
    .option('--json', 'print data as JSON')
    .option('--no-color', 'disable colour (also when NO_COLOR is set or output is not a terminal)')
    .option('--debug', 'print stack traces for unexpected errors')
    .option(
      '--read-url <url>',
      'read from this server (a streaming replica, say) in the commands that only read; writes always go to DATABASE_URL (default: CANON_READ_URL)',
    )
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ writeErr: writeUsageError })
    .addHelpText(
      'after',
      `
Examples:
  $ canon demo                         run the example pipeline on 100 documents
  $ canon db status                    where the database is and whether it is current
  $ canon events append doc-1 document.created --payload '{"content":"hello"}'
  $ canon work                         run decide and execute workers
  $ canon health                       what is queued, stuck or dead

Database: DATABASE_URL selects a server; without it canon runs an embedded Postgres
with its data under ./.canon (CANON_HOME to move it). CANON_READ_URL (or --read-url) points
health, alerts, watch, trace, dead-jobs, serve, export and the reports at a replica.
Exit codes: 0 ok, 1 failure, 2 bad usage or input, 3 database unavailable or not migrated,
4 conflict (retry). health and alerts: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.`,
    );
  const run = runner(state);
  for (const register of commands) register(program, run);
  // every subcommand inherits the same error handling
  const propagate = (cmd: Command) => {
    for (const sub of cmd.commands) {
      sub.exitOverride().showSuggestionAfterError(true).configureOutput({ writeErr: writeUsageError });
      propagate(sub);
    }
  };
  propagate(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  // `canon … | head` closes the pipe early: that is the reader's choice, not an error
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  const state = { code: EXIT.OK as number };
  const program = buildProgram(state);
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help')
        return EXIT.OK;
      return EXIT.USAGE;
    }
    return reportError(e, argv.includes('--debug'));
  }
  return state.code;
}
