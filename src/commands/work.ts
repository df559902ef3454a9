// `canon work` (both lanes), `canon work decide`, `canon work execute`.
import { type Command, Option } from 'commander';
import { intArg, numberArg } from '../args.js';
import type { Ctx } from '../context.js';
import { waitForDatabase } from '../engine/faults.js';
import { createLogger, type LogFormat, type LogLevel } from '../engine/log.js';
import { startWorker } from '../engine/run.js';
import type { Lane } from '../engine/types.js';
import { usageError } from '../errors.js';
import { pipelineOption } from './shared/options.js';
import { examples, type Register, type Run } from './types.js';

interface WorkOpts {
  concurrency: number;
  once?: boolean;
  maxJobs?: number;
  maxSeconds?: number;
  pipeline?: string;
  log: LogFormat;
  logLevel: LogLevel;
  pollInterval: number;
  grace: number;
  batch: number;
  decisionBatch: number;
  lanes?: string;
  failFast?: boolean;
}

function addWorkOptions(cmd: Command): Command {
  return cmd
    .option('--concurrency <n>', 'jobs run at once per lane', intArg('--concurrency', 1, 1000), 4)
    .option('--once', 'process what is ready, then exit (batch use)')
    .option('--max-jobs <n>', 'exit after claiming this many jobs', intArg('--max-jobs', 1, Number.MAX_SAFE_INTEGER))
    .option('--max-seconds <s>', 'exit after this many seconds', numberArg('--max-seconds', 0.1, 1e9))
    .addOption(pipelineOption())
    .addOption(new Option('--log <format>', 'log format on stderr').choices(['text', 'json']).default('text'))
    .addOption(
      new Option('--log-level <level>', 'least severe level logged')
        .choices(['debug', 'info', 'warn', 'error', 'silent'])
        .default('info'),
    )
    .option(
      '--poll-interval <ms>',
      'fallback poll when no notification arrives',
      intArg('--poll-interval', 10, 600_000),
      1000,
    )
    .option('--batch <n>', 'execution jobs claimed per round trip', intArg('--batch', 1, 1000), 10)
    .option(
      '--decision-batch <n>',
      'decisions claimed and made in one transaction (they are pure and quick: bigger is cheaper)',
      intArg('--decision-batch', 1, 1000),
      100,
    )
    .option(
      '--fail-fast',
      'exit 3 at once when the database cannot be reached at start (default without --once: wait and retry with backoff)',
    )
    .option(
      '--grace <s>',
      'on SIGTERM, seconds to let in-flight jobs finish before releasing them',
      numberArg('--grace', 0, 3600),
      10,
    );
}

async function work(ctx: Ctx, lanes: Lane[], role: string, o: WorkOpts): Promise<number> {
  const log = createLogger({ format: o.log, level: o.logLevel });
  // a worker started before its database (a host booting, a failover) waits for it; a
  // supervisor that prefers to restart the process passes --fail-fast, and a batch run
  // (--once) does not wait either: it reports at once, like every other command
  if (!o.failFast && !o.once) await waitForDatabase(log);
  const { done } = await startWorker(ctx, {
    lanes,
    role,
    log,
    concurrency: o.concurrency,
    once: o.once,
    maxJobs: o.maxJobs,
    maxSeconds: o.maxSeconds,
    pipelinePath: o.pipeline,
    pollMs: o.pollInterval,
    batchSize: o.batch,
    decisionBatch: o.decisionBatch,
    graceMs: o.grace * 1000,
  });
  const stats = await done;
  ctx.print(
    stats,
    (s) =>
      `worker ${s.worker_id}: ${s.claimed} claimed, ${s.succeeded} succeeded, ${s.retried} retried, ${s.dead} dead, ${s.fenced} fenced, ${s.released} released`,
  );
  return stats.errors > 0 ? 1 : 0;
}

function parseLanes(v: string | undefined): Lane[] {
  if (!v) return ['decision', 'execution'];
  const lanes = v.split(',').map((s) => s.trim());
  for (const l of lanes)
    if (l !== 'decision' && l !== 'execution') throw usageError(`--lanes takes decision and/or execution, got "${l}"`);
  return [...new Set(lanes)] as Lane[];
}

export const register: Register = (program, run: Run) => {
  const w = addWorkOptions(
    program
      .command('work')
      .description('run workers: decide (the authority) and execute (the handlers) in one process')
      .option('--lanes <lanes>', 'decision,execution (default both)'),
  )
    .addHelpText(
      'after',
      examples(
        'canon work',
        'canon work --concurrency 16 --log json',
        'canon work --once --max-jobs 500',
        'canon work execute --pipeline ./my-pipeline.js',
      ) +
        '\n\nSIGTERM/SIGINT: stop claiming, let in-flight jobs finish for --grace seconds, then release them.' +
        '\nA database that cannot be reached at start is waited for (one line per kind of failure,' +
        '\nretries with backoff); --fail-fast (and --once) exit 3 instead. Connection timeouts:' +
        '\nCANON_STATEMENT_TIMEOUT and the other variables in docs/OPERATIONS.md.' +
        '\nExit 0 after a clean stop, 1 if a job could not be processed, 3 database unusable' +
        '\n(with --fail-fast or --once: also unreachable).',
    )
    .action(run(async (ctx, o: WorkOpts) => work(ctx, parseLanes(o.lanes), 'work', o)));

  // The lane subcommands take `work`'s options (commander hands options written after the
  // subcommand to `work`, which declares them), so they are read from the parent.
  const parentOpts = (cmd: Command) => cmd.parent!.opts() as WorkOpts;
  w.command('decide')
    .description('run only the DecisionAuthority (decision lane); takes the options of `canon work`')
    .addHelpText('after', examples('canon work decide', 'canon work decide --concurrency 8 --once'))
    .action(run(async (ctx, _o: unknown, cmd: Command) => work(ctx, ['decision'], 'decide', parentOpts(cmd))));

  w.command('execute')
    .description('run only the ExecutionEngine (execution lane); takes the options of `canon work`')
    .addHelpText('after', examples('canon work execute', 'canon work execute --concurrency 32 --log json'))
    .action(run(async (ctx, _o: unknown, cmd: Command) => work(ctx, ['execution'], 'execute', parentOpts(cmd))));
};
