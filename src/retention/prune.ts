// Retention: finished jobs and their runs older than a horizon are removed a settled entity at
// a time (canon.prune_batch), in batches of one short transaction each, while workers run.
// The ledger is never touched; each entity's tally (canon.entity_pruned) keeps its status,
// trace and diagnose answering. docs/decisions/0032-retention-by-settled-entity.md.
import type pg from 'pg';
import { PRUNE_SQL } from '../sql/prune.js';

export interface PruneCounts {
  entities: number;
  jobs: number;
  runs: number;
  rejections: number;
}

export interface PruneOptions {
  olderThanSeconds: number;
  /** jobs looked at per batch (and at most removed per transaction) */
  batchSize: number;
  dryRun: boolean;
  /** how far the walk over jobs has come (ids), of how many, and the counts so far */
  onProgress?: (done: number, total: number, counts: PruneCounts) => void;
  /** asked before each batch: true stops the run after the batch in hand (SIGINT) */
  stopRequested?: () => boolean;
}

export interface PruneSummary extends PruneCounts {
  /** the row in canon.prune_runs; null for a dry run, which writes nothing */
  run_id: number | null;
  dry_run: boolean;
  older_than_seconds: number;
  horizon: string;
  batches: number;
  /** false when the run was stopped before the walk reached the horizon */
  complete: boolean;
}

export async function prune(pool: pg.Pool, opts: PruneOptions): Promise<PruneSummary> {
  const started = opts.dryRun
    ? { id: null, horizon: (await pool.query(PRUNE_SQL.horizon, [opts.olderThanSeconds])).rows[0].horizon as Date }
    : ((await pool.query(PRUNE_SQL.start, [opts.olderThanSeconds, opts.batchSize])).rows[0] as {
        id: string;
        horizon: Date;
      });
  const runId = started.id === null ? null : Number(started.id);
  const counts: PruneCounts = { entities: 0, jobs: 0, runs: 0, rejections: 0 };
  let batches = 0;
  let complete = false;
  try {
    const range = (await pool.query(PRUNE_SQL.idRange)).rows[0];
    const first = Number(range.min_id);
    const total = Math.max(0, Number(range.max_id) - first + 1);
    let cursor = first - 1;
    for (;;) {
      if (opts.stopRequested?.()) break;
      const w = (await pool.query(PRUNE_SQL.walk, [cursor, opts.batchSize, started.horizon])).rows[0];
      if (w.n === 0) {
        complete = true;
        break;
      }
      const got = (
        runId === null
          ? await pool.query(PRUNE_SQL.wouldRemove, [w.entity_ids, started.horizon])
          : await pool.query(PRUNE_SQL.batch, [runId, w.entity_ids])
      ).rows[0] as PruneCounts;
      for (const k of Object.keys(counts) as (keyof PruneCounts)[]) counts[k] += Number(got[k]);
      batches++;
      cursor = Number(w.last_id);
      opts.onProgress?.(Math.min(total, cursor - first + 1), total, counts);
      if (w.past_horizon || w.n < opts.batchSize) {
        complete = true;
        break;
      }
    }
  } catch (e) {
    if (runId !== null) await pool.query(PRUNE_SQL.finish, [runId, (e as Error).message]).catch(() => {});
    throw e;
  }
  if (runId !== null) await pool.query(PRUNE_SQL.finish, [runId, complete ? null : 'stopped before the horizon']);
  return {
    run_id: runId,
    dry_run: opts.dryRun,
    older_than_seconds: opts.olderThanSeconds,
    horizon: new Date(started.horizon).toISOString(),
    batches,
    ...counts,
    complete,
  };
}
