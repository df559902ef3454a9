// A pinned MVCC horizon on a real Postgres: a REPEATABLE READ transaction held open by the
// test is what `canon health`, `canon alerts` and /metrics' snapshot name, with its pid and
// age; while it is held, vacuum leaves the dead versions of processed jobs in place (health's
// hot tables show them), and once it ends they go.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvent } from '../src/ledger.js';
import { canon, createTestDb, type TestDb, waitFor } from './helpers.js';
import { json, workOnce } from './seeing-common.js';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('horizon');
});
afterAll(async () => db.end());

interface Holder {
  kind: string;
  pid: number | null;
  xmin_age: number;
  seconds: number | null;
}
type Table = { table: string; dead_tuples: number; dead_ratio: number };

const deadJobs = async () => {
  const h = await json(db, ['health']);
  return (h.data.horizon.hot_tables as Table[]).find((t) => t.table === 'jobs')!.dead_tuples;
};

describe('a REPEATABLE READ transaction held open', () => {
  let reader: pg.PoolClient;
  let pid: number;

  it('is named by health with its pid and age, fires CanonHorizonPinned, and keeps vacuum from reclaiming jobs', async () => {
    reader = await db.pool.connect();
    await reader.query('begin isolation level repeatable read');
    await reader.query('select count(*) from canon.events'); // the snapshot is taken here
    pid = (await reader.query('select pg_backend_pid() as pid')).rows[0].pid;

    // work made after the snapshot: every job is updated twice, and the old versions must stay
    for (let i = 0; i < 5; i++)
      await appendEvent(db.pool, { entityId: `hz-${i}`, kind: 'document.created', payload: { content: `d${i}` } });
    expect((await workOnce(db)).exitCode).toBe(0);

    const r = await json(db, ['health', '--threshold', 'horizon_warning_seconds=0']);
    expect(r.exitCode, r.stderr).toBe(1); // WARNING
    const holders = r.data.horizon.holders as Holder[];
    const held = holders.find((x) => x.pid === pid);
    expect(held, JSON.stringify(holders)).toMatchObject({ kind: 'session', pid });
    // the appends and the work consumed transaction ids since the reader's snapshot
    expect(held!.xmin_age).toBeGreaterThanOrEqual(5);
    expect(held!.seconds).toBeGreaterThan(0);
    expect(r.data.horizon.xmin_age).toBeGreaterThanOrEqual(held!.xmin_age);
    expect(r.data.horizon.pinned_seconds).toBeGreaterThanOrEqual(held!.seconds!);
    const problem = r.data.problems.find((p: { alert: string }) => p.alert === 'CanonHorizonPinned');
    expect(problem).toMatchObject({ severity: 'warning', runbook: 'runbooks/horizon-pinned.md' });
    expect(problem.summary).toContain(`pid ${pid}`);

    const human = await canon(['health', '--threshold', 'horizon_warning_seconds=0'], { url: db.url });
    expect(human.stdout).toMatch(new RegExp(`horizon +oldest session pid ${pid} .*idle in transaction`));
    expect(human.stdout).toMatch(/hot tables +(entities|entity_status|job_runs|jobs) [\d.]+% dead/);

    const a = await json(db, ['alerts', '--threshold', 'horizon_warning_seconds=0']);
    const alert = (a.data.alerts as { name: string; firing: boolean; summary: string }[]).find(
      (x) => x.name === 'CanonHorizonPinned',
    );
    expect(alert).toMatchObject({ firing: true });
    expect(alert!.summary).toContain(`pid ${pid}`);

    // vacuum cannot remove what died after the reader's snapshot
    await db.pool.query('vacuum canon.jobs');
    expect(
      await waitFor(async () => (await deadJobs()) > 0 && (await deadJobs()), { what: 'dead jobs counted' }),
    ).toBeGreaterThan(0);
  });

  it('ends: the holder is gone, the alert clears at the default thresholds, and vacuum reclaims the dead jobs', async () => {
    await reader.query('commit');
    reader.release();
    const r = await json(db, ['health']);
    expect((r.data.horizon.holders as Holder[]).some((x) => x.pid === pid)).toBe(false);
    const a = await json(db, ['alerts']);
    expect(a.data.alerts.find((x: { name: string }) => x.name === 'CanonHorizonPinned')).toMatchObject({
      firing: false,
    });
    await db.pool.query('vacuum canon.jobs');
    await waitFor(async () => (await deadJobs()) === 0, { what: 'dead jobs reclaimed' });
  });
});

it('refuses a critical horizon threshold below the warning one: UNKNOWN, one status line', async () => {
  const r = await canon(
    ['health', '--threshold', 'horizon_warning_seconds=600', '--threshold', 'horizon_critical_seconds=60'],
    { url: db.url },
  );
  expect(r.exitCode).toBe(3); // UNKNOWN: the check could not run
  expect(r.stdout.trim()).toMatch(
    /^CANON UNKNOWN - threshold horizon_critical_seconds \(60\) must not be below horizon_warning_seconds \(600\)$/,
  );
});
