// A heartbeat only moves a running job's and run's heartbeat_at and lease_expires_at, which no
// index holds or filters on: Postgres can then update the rows in place (HOT), without a new
// entry in any of the queue's indexes. Proved from the server's own counters.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { definePipeline } from '../src/pipeline/define.js';
import { syncPipeline } from '../src/pipeline/sync.js';
import { createTestDb, type TestDb } from './helpers.js';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('hot-updates');
});
afterAll(async () => db.end());

const hotUpdates = async (table: string) => {
  // the counters reach pg_stat_user_tables when the backend flushes them; force it
  await db.pool.query('select pg_stat_force_next_flush()');
  const r = await db.pool.query(
    `select n_tup_upd::int as upd, n_tup_hot_upd::int as hot from pg_stat_user_tables where schemaname = 'canon' and relname = $1`,
    [table],
  );
  return r.rows[0] as { upd: number; hot: number };
};

it('heartbeats update running jobs and runs in place (HOT)', async () => {
  await syncPipeline(
    db.pool,
    definePipeline({
      name: 'hot',
      jobTypes: { slow: { timeoutSeconds: 60 } },
      authority: () => ({ done: true }),
      handlers: { slow: async () => ({}) },
    }),
  );
  const worker = `work-${randomUUID()}`;
  await db.pool.query(`select canon.append_event('hot-1', 'doc.created')`);
  await db.pool.query(`select * from canon.enqueue_job('slow', 'hot-1')`);
  const claimed = await db.pool.query(`select run_id from canon.claim_runs('execution', $1, 1)`, [worker]);
  expect(claimed.rows).toHaveLength(1);
  const runId = Number(claimed.rows[0].run_id);

  const before = { jobs: await hotUpdates('jobs'), runs: await hotUpdates('job_runs') };
  const beats = 5;
  for (let i = 0; i < beats; i++) {
    const r = await db.pool.query('select canon.heartbeat_runs($1, $2::bigint[]) as id', [worker, [runId]]);
    expect(r.rows.map((x) => Number(x.id))).toEqual([runId]);
  }
  const after = { jobs: await hotUpdates('jobs'), runs: await hotUpdates('job_runs') };

  for (const t of ['jobs', 'runs'] as const) {
    expect(after[t].upd - before[t].upd, `${t} updated once per heartbeat`).toBe(beats);
    expect(after[t].hot - before[t].hot, `${t}: every heartbeat a HOT update`).toBe(beats);
  }
});
