// `canon load`: fills an empty database with a synthetic dataset at the seed's scale, for
// benchmarks and for trying canon's read paths on a realistic ledger.
import { intArg, numberArg } from '../args.js';
import { fmtSecs } from '../format.js';
import { type LoadSummary, load } from '../load/load.js';
import { checkOptions, DEFAULTS, type LoadOptions, scaledOptions } from '../load/plan.js';
import { Progress } from '../progress.js';
import { pipelineOption } from './shared/options.js';
import { examples, type Register } from './types.js';

interface LoadFlags {
  scale?: number;
  entities?: number;
  jobs?: number;
  runs?: number;
  events?: number;
  days: number;
  seed: string;
  prefix: string;
  chunk?: number;
  resume?: boolean;
  pipeline?: string;
}

const fmt = (x: number) => x.toLocaleString('en-US');

function human(s: LoadSummary): string {
  const m = s.mix;
  return [
    `loaded ${fmt(s.counts.entities)} entities, ${fmt(s.counts.events)} events, ${fmt(s.counts.jobs)} jobs, ${fmt(s.counts.runs)} runs in ${fmtSecs(s.seconds.total)}${s.resumed_from_chunk ? ` (resumed at chunk ${s.resumed_from_chunk} of ${s.chunks}; ${fmtSecs(s.seconds.including_resumed_runs)} in all)` : ''}`,
    `  completed ${fmt(m.completed ?? 0)}; dead: ${fmt(m.dead_max_attempts ?? 0)} max_attempts_exceeded, ${fmt(m.dead_ttl ?? 0)} ttl_exceeded, ${fmt(m.dead_handler ?? 0)} handler_error, ${fmt(m.dead_precondition ?? 0)} precondition_failed`,
    `  in flight: ${fmt(m.stuck ?? 0)} stuck (old heartbeat), ${fmt(m.queued_exec ?? 0)} queued execution, ${fmt(m.queued_decision ?? 0)} queued decision, ${fmt(m.retry_scheduled ?? 0)} waiting for a retry`,
    `  ${fmt(m.retries ?? 0)} failed attempts retried, ${fmt(m.bursts ?? 0)} later bursts of events; rows ${fmtSecs(s.seconds.rows)}, ANALYZE ${fmtSecs(s.seconds.analyze)}`,
    '  next: canon audit verify, canon status verify, canon health, npm run bench',
  ].join('\n');
}

export const register: Register = (program, run) => {
  program
    .command('load')
    .description("fill an empty database with a synthetic dataset (the seed's scale by default) with valid hash chains")
    .option(
      '--scale <x>',
      'multiply the default counts (100,000 entities, 1,000,000 jobs, 1,050,000 runs, 10,000,000 events)',
      numberArg('--scale', 0.0001, 100),
    )
    .option('--entities <n>', 'entities (documents)', intArg('--entities', 10, 100_000_000))
    .option('--jobs <n>', 'jobs (decision and execution)', intArg('--jobs', 70, 1_000_000_000))
    .option('--runs <n>', 'runs (attempts; failed attempts are runs too)', intArg('--runs', 70, 1_000_000_000))
    .option('--events <n>', 'ledger events', intArg('--events', 70, 10_000_000_000))
    .option(
      '--days <n>',
      'spread the entities over this many days up to now',
      numberArg('--days', 0.1, 3650),
      DEFAULTS.days,
    )
    .option('--seed <text>', 'the generator seed (same options and seed, same dataset)', 'canon')
    .option('--prefix <text>', 'entity ids are <prefix>-000001, …', 'doc')
    .option(
      '--chunk <n>',
      "entities per transaction (default: about 100,000 events' worth)",
      intArg('--chunk', 1, 1_000_000),
    )
    .option('--resume', 'finish an interrupted load started with the same options')
    .addOption(pipelineOption())
    .addHelpText(
      'after',
      examples(
        'createdb canon_bench && DATABASE_URL=postgres://me@localhost/canon_bench canon load',
        'canon load --scale 0.01',
        'canon load --entities 5000 --jobs 50000 --runs 52000 --events 500000 --json',
        'canon load --resume',
      ) +
        '\n\nThe target must be empty (or hold an interrupted load, with --resume). The loader needs a superuser: it' +
        '\nCOPYs rows with the ledger triggers bypassed (session_replication_role = replica) and computes the hash' +
        '\nchains, entity heads and status rows itself; canon audit verify and canon status verify pass afterwards.' +
        '\nEach chunk of entities commits on its own; progress (rate, ETA) goes to stderr. ANALYZE runs at the end.' +
        '\nExit 0 loaded, 1 failed (committed chunks stay; --resume), 2 bad options or a non-empty target, 3 database unavailable or not a superuser.',
    )
    .action(
      run(async (ctx, f: LoadFlags) => {
        const base = f.scale !== undefined ? scaledOptions(f.scale) : DEFAULTS;
        const o: LoadOptions = {
          entities: f.entities ?? base.entities,
          jobs: f.jobs ?? base.jobs,
          runs: f.runs ?? base.runs,
          events: f.events ?? base.events,
          days: f.days,
          seed: f.seed,
          prefix: f.prefix,
          chunk: f.chunk ?? 0,
        };
        checkOptions(o);
        const db = await ctx.db();
        const bar = new Progress('loading', o.events, ctx.stderr, 'events');
        const summary = await load(db.pool, db.target.url, o, {
          resume: f.resume,
          pipeline: f.pipeline,
          progress: {
            chunk: (done, total, events) => bar.update(events, `chunk ${done}/${total}`),
            phase: (what) => {
              bar.finish();
              ctx.info(`canon load: ${what}…`);
            },
          },
        });
        ctx.print(summary, human);
        return 0;
      }),
    );
};
