// Shared by `canon work`, `canon tick`, `canon demo` and the library's startWorker: load and sync the
// pipeline, build a worker on a pool sized for its concurrency, and stop it cleanly on SIGTERM/SIGINT.
import type pg from 'pg';
import type { Ctx } from '../context.js';
import { createPool, listenUrl } from '../db/connect.js';
import type { Logger, Pipeline } from '../pipeline/define.js';
import { loadPipeline } from '../pipeline/load.js';
import { syncPipeline } from '../pipeline/sync.js';
import type { Lane } from './types.js';
import { Worker, type WorkerOptions, type WorkerStats } from './worker.js';

export interface RunWorkerOptions extends Partial<Omit<WorkerOptions, 'pool' | 'url' | 'pipeline' | 'log'>> {
  pipelinePath?: string;
  lanes: Lane[];
  role: string;
  log: Logger;
  handleSignals?: boolean;
}

export interface StartedWorker {
  worker: Worker;
  done: Promise<WorkerStats>;
  pool: pg.Pool;
}

/** For the commands: the pipeline from --pipeline (or CANON_PIPELINE), the database from the context. */
export async function startWorker(ctx: Ctx, o: RunWorkerOptions): Promise<StartedWorker> {
  const { pipeline, file } = await loadPipeline(o.pipelinePath);
  const db = await ctx.db();
  return launchWorker(db.target.url, pipeline, file, o);
}

/** Syncs the pipeline into a migrated database and runs a worker for it on a pool of its own. */
export async function launchWorker(
  url: string,
  pipeline: Pipeline,
  file: string | undefined,
  o: Omit<RunWorkerOptions, 'pipelinePath'>,
): Promise<StartedWorker> {
  const concurrency = o.concurrency ?? 4;
  // each in-flight job may hold a client (decisions hold one for their transaction), plus
  // claims and heartbeats
  const pool = createPool(url, { max: concurrency * o.lanes.length + 4, applicationName: `canon ${o.role}` });
  try {
    await syncPipeline(pool, pipeline);
  } catch (e) {
    await pool.end().catch(() => {});
    throw e;
  }
  const worker = new Worker({
    ...o,
    pool,
    url: listenUrl(url),
    pipeline,
    pipelineFile: file,
    concurrency,
    log: o.log,
  });
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      o.log.info(`${sig} received: finishing in-flight jobs (send again to release them now)`);
      worker.stop();
    } else {
      o.log.warn(`${sig} received again: exiting; in-flight runs are released or rescued after their TTL`);
      process.exit(130);
    }
  };
  if (o.handleSignals !== false) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  const done = worker.run().finally(async () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await pool.end().catch(() => {});
  });
  return { worker, done, pool };
}
