// A worker started from an application's own code (the library's `startWorker`), the same
// worker `canon work` runs: the pipeline is a value from definePipeline or a module's path,
// the database a connection string (else DATABASE_URL, else the embedded server), and the
// application owns its signals unless it asks canon to handle them.
import { connectClient, resolveTarget } from '../db/connect.js';
import { validateUrl } from '../db/url.js';
import { usageError } from '../errors.js';
import { assertMigrated } from '../migrate.js';
import type { Logger, Pipeline } from '../pipeline/define.js';
import { loadPipeline, validatePipeline } from '../pipeline/load.js';
import { createLogger } from './log.js';
import { launchWorker } from './run.js';
import type { Lane } from './types.js';
import type { WorkerStats } from './worker.js';

export interface StartWorkerOptions {
  /** The pipeline: what definePipeline returned, or the path of a module that exports it. */
  // biome-ignore lint/suspicious/noExplicitAny: any pipeline, whatever its job types and flags
  pipeline: Pipeline<any, any> | string;
  /** postgres://user:password@host:port/db; default DATABASE_URL, else the embedded server. */
  connectionString?: string;
  /** The lanes this worker serves (default both: decisions and executions). */
  lanes?: Lane[];
  /** Handlers run at once per lane (default 4). */
  concurrency?: number;
  /** Execution jobs claimed per round trip (default 10). */
  batchSize?: number;
  /** Decisions claimed and made in one transaction (default 100). */
  decisionBatch?: number;
  /** Fallback poll when no notification arrives, in ms (default 1000). */
  pollMs?: number;
  /** After stop(), how long in-flight handlers may finish before their runs are released, in ms (default 10000). */
  graceMs?: number;
  /** Process what is ready, then stop. */
  once?: boolean;
  /** Stop after claiming this many jobs. */
  maxJobs?: number;
  /** Stop after this many seconds. */
  maxSeconds?: number;
  /** Where log lines go (default: text lines on stderr, level info). */
  logger?: Logger;
  /** The worker id's prefix (`<role>-<uuid>`; default "work"). */
  role?: string;
  /** Stop gracefully on SIGTERM/SIGINT (default false: the application decides when to call stop()). */
  handleSignals?: boolean;
  /** Called after each job, with its outcome (succeeded, retry, dead, fenced, released). */
  onJobDone?: (job: { id: number; type: string; entityId: string; lane: Lane }, outcome: string) => void;
}

export interface RunningWorker {
  /** `<role>-<uuid>`, as in canon.workers and every log line. */
  readonly id: string;
  /** Counters, updated as the worker runs. */
  readonly stats: WorkerStats;
  /** Stop claiming; in-flight jobs finish (or are released after graceMs); `done` then resolves. */
  stop(): void;
  /** Resolves with the final counters when the worker has stopped and closed its connections. */
  readonly done: Promise<WorkerStats>;
}

/**
 * Starts a worker in this process. Rejects with a CanonError (one line, no password) when the
 * pipeline is invalid, the database unreachable or its schema not migrated (`canon migrate`).
 */
export async function startWorker(options: StartWorkerOptions): Promise<RunningWorker> {
  const { pipeline, file } =
    typeof options.pipeline === 'string'
      ? await loadPipeline(options.pipeline)
      : { pipeline: validatePipeline(options.pipeline, 'pipeline'), file: undefined };
  const url = options.connectionString ?? (await resolveTarget()).url;
  const bad = validateUrl(url);
  if (bad) throw usageError(bad.replace(/^DATABASE_URL/, 'connectionString'));
  await checkMigrated(url);
  const { onJobDone } = options;
  const tuning = {
    concurrency: options.concurrency,
    batchSize: options.batchSize,
    decisionBatch: options.decisionBatch,
    pollMs: options.pollMs,
    graceMs: options.graceMs,
    once: options.once,
    maxJobs: options.maxJobs,
    maxSeconds: options.maxSeconds,
  };
  // an option left out takes the worker's default (spread as undefined, it would replace it)
  for (const k of Object.keys(tuning) as (keyof typeof tuning)[]) if (tuning[k] === undefined) delete tuning[k];
  const { worker, done } = await launchWorker(url, pipeline, file, {
    ...tuning,
    lanes: options.lanes ?? ['decision', 'execution'],
    role: options.role ?? 'work',
    log: options.logger ?? createLogger(),
    handleSignals: options.handleSignals ?? false,
    onJobDone:
      onJobDone &&
      ((j, outcome) => onJobDone({ id: j.id, type: j.type, entityId: j.entity_id, lane: j.lane }, outcome)),
  });
  return { id: worker.id, stats: worker.stats, stop: () => worker.stop(), done };
}

async function checkMigrated(url: string): Promise<void> {
  // also learns whether the URL leads to a transaction pooler, before the worker's pool opens
  const client = await connectClient(url, 'canon');
  try {
    await assertMigrated(client);
  } finally {
    await client.end().catch(() => {});
  }
}
