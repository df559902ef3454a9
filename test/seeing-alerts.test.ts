// `canon alerts`: each alert fires on a real state and clears when the state is repaired
// (stuck, gap, trigger and authority activity are proved in seeing-health.test.ts through
// the same rules). Exit codes follow the monitoring-plugin convention.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canon, createTestDb, root, type TestDb, uuid } from './helpers.js';
import { doc, env, FAST } from './seeing-common.js';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('seeing-alerts');
  await db.pool.query(
    `insert into canon.job_types (name, lane, max_attempts, timeout_seconds) values ('seeing_x', 'execution', 3, 600)`,
  );
});
afterAll(async () => db.end());

type Alert = { name: string; firing: boolean; severity: string; runbook: string; value: number };
async function alerts(extra: string[] = []) {
  const r = await canon(['alerts', '--json', ...extra], { url: db.url, env: env() });
  const d = JSON.parse(r.stdout);
  const firing = (d.alerts as Alert[]).filter((a) => a.firing).map((a) => `${a.name}:${a.severity}`);
  return { code: r.exitCode, firing, data: d };
}

describe('alerts', () => {
  it('none fire on a healthy database: OK, exit 0, every alert listed with its runbook', async () => {
    const a = await alerts();
    expect(a).toMatchObject({ code: 0, firing: [] });
    expect(a.data.status_line).toBe('CANON OK - none of 17 alerts firing');
    expect(a.data.alerts.map((x: Alert) => x.name)).toEqual([
      'CanonCoreTriggerDisabled',
      'CanonEventToJobGap',
      'CanonStuckJobs',
      'CanonHighLag',
      'CanonNoAuthorityActivity',
      'CanonQueueBacklog',
      'CanonLowSuccessRate',
      'CanonDuplicateEvents',
      'CanonDeadJobs',
      'CanonTraceMissing',
      'CanonGatewayBypass',
      'CanonFlagAutoRollback',
      'CanonLedgerEditAttempts',
      'CanonJobTypePaused',
      'CanonBreakerOpen',
      'CanonHorizonPinned',
      'CanonHotTableDeadTuples',
    ]);
    for (const x of a.data.alerts as Alert[]) expect(fs.existsSync(path.join(root, x.runbook)), x.runbook).toBe(true);
  });

  it('high lag: warning past 60 s, critical past 300 s, cleared by cancelling the job; backlog with its threshold', async () => {
    const id = (
      await db.pool.query(
        `select job_id from canon.enqueue_job('seeing_x', 'lag-1', '{}'::jsonb, null, null, null, now() - interval '2 minutes')`,
      )
    ).rows[0].job_id;
    expect(await alerts()).toMatchObject({ code: 1, firing: ['CanonHighLag:warning'] });
    expect((await alerts(['--threshold', 'queued_max=0'])).firing).toEqual([
      'CanonHighLag:warning',
      'CanonQueueBacklog:warning',
    ]);
    await db.pool.query(`update canon.jobs set run_at = now() - interval '6 minutes' where id = $1`, [id]);
    const c = await alerts();
    expect(c).toMatchObject({ code: 2, firing: ['CanonHighLag:critical'] });
    const human = await canon(['alerts', '--firing'], { url: db.url });
    expect(human.stdout.split('\n')[0]).toBe('CANON CRITICAL - 1 of 17 alerts firing: CanonHighLag (critical)');
    expect(human.stdout).toMatch(/FIRING {2}CanonHighLag +estimated lag 3\d\ds: .* → runbooks\/high-lag\.md/);
    expect((await canon(['jobs', 'cancel', String(id), '-m', 'test'], { url: db.url })).exitCode).toBe(0);
    expect(await alerts(['--threshold', 'queued_max=0'])).toMatchObject({ code: 0, firing: [] });
  });

  it('low success rate and dead jobs fire on poison runs and clear after good runs and an acknowledgement', async () => {
    for (const i of [1, 2, 3, 4]) await doc(db, `poison-${i}`, 'bad #poison');
    let w = await canon(['work', '--once', '--pipeline', FAST], { url: db.url, env: env({ FAST_ATTEMPTS: '1' }) });
    expect(w.exitCode, w.stderr).toBe(0);
    const a = await alerts();
    expect(a.firing).toEqual(['CanonLowSuccessRate:warning', 'CanonDeadJobs:warning']);
    expect(a.code).toBe(1);
    const rate = a.data.alerts.find((x: Alert) => x.name === 'CanonLowSuccessRate').value;
    const runs = (
      await db.pool.query(
        `select count(*) filter (where status = 'succeeded')::float / count(*) as r from canon.job_runs where finished_at is not null`,
      )
    ).rows[0].r;
    expect(rate).toBeCloseTo(runs, 3);
    for (let i = 0; i < 10; i++) await doc(db, `good-${i}`);
    w = await canon(['work', '--once', '--pipeline', FAST], { url: db.url, env: env() });
    expect(w.exitCode, w.stderr).toBe(0);
    expect((await alerts()).firing).toEqual(['CanonDeadJobs:warning']);
    const ack = await canon(['jobs', 'cancel', '--reason', 'max_attempts_exceeded', '--yes', '-m', 'known poison'], {
      url: db.url,
    });
    expect(ack.exitCode, ack.stderr).toBe(0);
    expect(await alerts()).toMatchObject({ code: 0, firing: [] });
  });

  it('duplicate run-written events (two runs completing the same step) fire critical and leave with the window', async () => {
    await doc(db, 'dup-1');
    await canon(['work', '--once', '--pipeline', FAST], { url: db.url, env: env() });
    const worker = `execute-${uuid()}`;
    await db.pool.query(`select * from canon.enqueue_job('seeing_x', 'dup-1')`);
    await db.pool.query(`select * from canon.enqueue_job('seeing_x', 'dup-1')`);
    const claimed = (await db.pool.query(`select trace_id from canon.claim_jobs('execution', $1, 10)`, [worker])).rows;
    expect(claimed).toHaveLength(2);
    for (const c of claimed) {
      const run = (await db.pool.query(`select id from canon.job_runs where trace_id = $1`, [c.trace_id])).rows[0].id;
      await db.pool.query(`select * from canon.complete_run($1, $2, '{}'::jsonb, 'seeing_x.succeeded')`, [run, worker]);
    }
    expect(await alerts()).toMatchObject({ code: 2, firing: ['CanonDuplicateEvents:critical'] });
    const r = await canon(['work', '--once', '--pipeline', FAST], { url: db.url, env: env() }); // the decisions the two results asked for
    expect(r.exitCode).toBe(0);
    await new Promise((res) => setTimeout(res, 1100));
    expect(await alerts(['--threshold', 'duplicate_window_seconds=1'])).toMatchObject({ code: 0, firing: [] });
  });

  it('a job inserted without the gateway and marked succeeded by hand: trace policy and bypass fire, and clear when repaired', async () => {
    const id = (
      await db.pool.query(
        `insert into canon.jobs (type, entity_id, status, finished_at, correlation_id) values ('seeing_x', 'hand-1', 'succeeded', now(), 'hand-1') returning id`,
      )
    ).rows[0].id;
    const alerts1 = () => alerts(['--threshold', 'duplicate_window_seconds=1']); // the pair above is outside 1 s by now
    const a = await alerts1();
    expect(a).toMatchObject({ code: 2, firing: ['CanonTraceMissing:critical', 'CanonGatewayBypass:warning'] });
    // legacy rows before a deliberate cutoff are tolerated (seed: trace-id policy with cutoff)
    await db.pool.query(
      `update canon.settings set value = to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') where key = 'trace_policy_cutoff'`,
    );
    expect((await alerts1()).firing).toEqual(['CanonGatewayBypass:warning']);
    await db.pool.query(`delete from canon.jobs where id = $1`, [id]);
    expect(await alerts1()).toMatchObject({ code: 0, firing: [] });
  });
});
