// The seeing queries answer from indexes: with sequential scans priced out, no plan reads the
// ledger, the queue or the runs sequentially (a plan keeps a Seq Scan only when no index can
// serve it). This is what keeps `health` cheap on a ledger of millions of events.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEAD_SQL } from '../src/sql/deadjobs.js';
import { DIAGNOSE_SQL } from '../src/sql/diagnose.js';
import { HEALTH_SQL } from '../src/sql/health.js';
import { METRICS_SQL } from '../src/sql/metrics.js';
import { TRACE_SQL } from '../src/sql/trace.js';
import { createTestDb, type TestDb } from './helpers.js';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('seeing-indexes');
});
afterAll(async () => db.end());

const queries: [string, string, unknown[]][] = [
  ['health snapshot', HEALTH_SQL.snapshot, [3600, 60, 60, 86400, 3600]],
  ['dead jobs', DEAD_SQL.list, [86400, null, null, null, 50]],
  ['dead jobs by type and correlation', DEAD_SQL.list, [86400, 'decide', 'doc-1', 'handler_error', 50]],
  ['trace by entity', TRACE_SQL.byEntity, ['doc-1']],
  ['trace by correlation', TRACE_SQL.byCorrelation, ['doc-1']],
  ['diagnose context', DIAGNOSE_SQL.context, ['doc-1', 60]],
  ['metrics runs since', METRICS_SQL.runsSince, ['2020-01-01', 0, 100]],
  ['metrics recent entities', METRICS_SQL.recentEntities, []],
];

it.each(queries)('%s reads canon tables through indexes only', async (_name, sql, params) => {
  const c = await db.pool.connect();
  try {
    await c.query('set enable_seqscan = off');
    const plan = (await c.query(`explain ${sql}`, params)).rows.map((r) => r['QUERY PLAN']).join('\n');
    expect(plan).not.toMatch(/Seq Scan on (events|jobs|job_runs|job_actions|workers|entity_status)\b/);
  } finally {
    c.release();
  }
});
