// `canon watch`: the live dashboard (Ink) an on-call engineer keeps open. Without a terminal
// on stdout, with CI set, with --once or --json it prints one snapshot and exits 0, so a pipe
// or a CI log gets text instead of a crash on raw mode.
import { parseDuration, printable } from '../args.js';
import type { Ctx } from '../context.js';
import { type DbTarget, describeUrl } from '../db/url.js';
import { EXIT, usageError } from '../errors.js';
import { parseThresholds } from '../observe/thresholds.js';
import { who, withWho } from '../steering/options.js';
import { KEYS } from '../tui/keys.js';
import { readSnapshot } from '../tui/snapshot.js';
import { dbSource } from '../tui/source.js';
import { readsOnly, thresholdOption } from './shared/options.js';
import { examples, type Register } from './types.js';

interface WatchOpts {
  interval: string;
  once?: boolean;
  readonly?: boolean;
  threshold?: string[];
  actor?: string;
  reason?: string;
}

/** How the header names the server the snapshots come from. */
const DATABASE_LABEL: Record<DbTarget['source'], string> = {
  DATABASE_URL: '',
  embedded: 'embedded ',
  '--read-url': 'read from ',
  CANON_READ_URL: 'read from ',
};

const MIN_INTERVAL = 1;
const MAX_INTERVAL = 3600;

function interval(raw: string): number {
  const s = parseDuration('--interval', raw);
  if (s < MIN_INTERVAL || s > MAX_INTERVAL)
    throw usageError(`--interval must be from ${MIN_INTERVAL}s to ${MAX_INTERVAL}s, got "${printable(raw)}"`);
  return s;
}

export const register: Register = (program, run) => {
  withWho(
    readsOnly(program.command('watch'))
      .description(
        'live dashboard: lag, event_to_job_gap, queued, running, stuck, dead, throughput, workers, failures, flags; drill down, retry, pause, kill',
      )
      .option(
        '--interval <seconds>',
        `time between refreshes, one query each (${MIN_INTERVAL}s to ${MAX_INTERVAL}s)`,
        '2',
      )
      .option('--once', 'print one plain snapshot and exit (also when stdout is not a terminal, or CI is set)')
      .option('--readonly', 'refuse every action (retry, cancel, pause, resume, kill)')
      .addOption(thresholdOption()),
  )
    .addHelpText(
      'after',
      examples(
        'canon watch',
        'canon watch --interval 5 --readonly',
        'canon watch --once',
        'canon watch --json | jq .health.estimated_lag_seconds',
        'canon watch --actor alice --reason "INC-42"',
      ) +
        `\n\nKeys:\n${KEYS.map(([k, v]) => `  ${k.padEnd(10)} ${v}`).join('\n')}\n\nActions are recorded with --actor (default: the OS user) and --reason (default "via canon watch").\nExit codes: 0 ok (also after q or Ctrl-C), 2 bad input, 3 database unavailable or not migrated.`,
    )
    .action(
      run(async (ctx: Ctx, opts: WatchOpts) => {
        const every = interval(opts.interval);
        const t = parseThresholds(opts.threshold, EXIT.USAGE);
        const w = who(opts);
        // React's development build keeps debugging records of every render (the heap of a
        // dashboard left open grows without bound); Ink and React are loaded only
        // here, in production mode, which also spares every other command loading them.
        process.env.NODE_ENV = 'production';
        const { canRunLive, plainSnapshot, runLive } = await import('../tui/run.js');
        const db = await ctx.readDb({ max: 3 });
        const database = `${DATABASE_LABEL[db.target.source]}${describeUrl(db.target.url)}`;
        if (!canRunLive(process.stdout, process.env, { once: opts.once, json: ctx.json })) {
          const snap = await readSnapshot(db.pool, t, {}, database);
          const cols = (process.stdout.isTTY && process.stdout.columns) || Number(process.env.COLUMNS) || 100;
          ctx.print(snap, (s) => plainSnapshot(s, cols, ctx.c.level > 0));
          return 0;
        }
        // actions write, so they go to DATABASE_URL even when the snapshots come from a replica
        const primary = async () => (await ctx.db({ max: 2 })).pool;
        const by = { actor: w.actor, reason: w.reason ?? 'via canon watch' };
        await runLive(dbSource(db.pool, t, database, by, primary), {
          interval: every,
          readonly: !!opts.readonly,
          c: ctx.c,
        });
        return 0;
      }),
    );
};
