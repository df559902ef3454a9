// One tick: take the tick lock (overlapping ticks skip instead of doubling work), rescue
// runs whose heartbeat is older than their TTL, advance guarded flag rollouts, then run a
// bounded batch of both lanes inline for deployments without long-running workers.
import type { Ctx } from '../context.js';
import { holdAdvisoryLock } from '../db/connect.js';
import type { Logger } from '../pipeline/define.js';
import { ENGINE_SQL, TICK_LOCK_KEY } from '../sql/engine.js';
import { advanceRollouts, type RolloutStep } from '../steering/rollout.js';
import { startWorker } from './run.js';
import type { WorkerStats } from './worker.js';

export interface TickSummary {
  skipped: boolean;
  rescued: { total: number; retry: number; dead: number; jobs: number[] };
  rollouts: RolloutStep[];
  work: WorkerStats;
  seconds: number;
}

const emptyStats = (): WorkerStats => ({
  worker_id: '',
  claimed: 0,
  succeeded: 0,
  retried: 0,
  dead: 0,
  fenced: 0,
  released: 0,
  decisions: 0,
  jobs_required: 0,
  errors: 0,
});

export async function tick(
  ctx: Ctx,
  o: { maxJobs: number; maxSeconds: number; concurrency: number; pipelinePath?: string; log: Logger },
): Promise<TickSummary> {
  const started = Date.now();
  const db = await ctx.db();
  // held by an open transaction on a connection of its own: works through a transaction pooler
  const release = await holdAdvisoryLock(db.pool, TICK_LOCK_KEY, false);
  if (!release) {
    return {
      skipped: true,
      rescued: { total: 0, retry: 0, dead: 0, jobs: [] },
      rollouts: [],
      work: emptyStats(),
      seconds: (Date.now() - started) / 1000,
    };
  }
  try {
    const rescued = (await db.pool.query(ENGINE_SQL.rescue, [1000])).rows as { job_id: number; outcome: string }[];
    const rollouts = await advanceRollouts(db.pool);
    await db.pool.query(ENGINE_SQL.eventPartitions);
    let work = emptyStats();
    if (o.maxJobs > 0 && o.maxSeconds > 0) {
      const { done } = await startWorker(ctx, {
        lanes: ['decision', 'execution'],
        role: 'tick',
        log: o.log,
        concurrency: o.concurrency,
        once: true,
        maxJobs: o.maxJobs,
        maxSeconds: o.maxSeconds,
        pipelinePath: o.pipelinePath,
        listen: false,
        pollMs: 50,
        graceMs: 5000,
        handleSignals: true,
      });
      work = await done;
    }
    return {
      skipped: false,
      rescued: {
        total: rescued.length,
        retry: rescued.filter((r) => r.outcome === 'retry').length,
        dead: rescued.filter((r) => r.outcome === 'dead').length,
        jobs: rescued.map((r) => r.job_id),
      },
      rollouts,
      work,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await release();
  }
}
