// Guarded auto-rollout on a real Postgres: one step per due tick and never two for
// overlapping ticks, completion at --until, waiting for evidence, and the automatic rollback
// (visible to alerts) when a handler fails during the rollout.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeHealth } from '../src/observe/health.js';
import { changeFlag, createFlag, flagHistory, getFlag } from '../src/steering/flags.js';
import { formatGuard, parseGuard } from '../src/steering/guard.js';
import { advanceRollouts, type RolloutStep, startAutoRollout, stopAutoRollout } from '../src/steering/rollout.js';
import { createTestDb, type TestDb } from './helpers.js';
import { clearQueue, enqueue, jobType, runJobs, uniq } from './steering-helpers.js';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('steerrollout');
});
afterAll(async () => db.end());

const ops = { actor: 'ops', reason: 'test' };
const quarterHour = 900;

async function newFlag(): Promise<string> {
  const name = uniq('R');
  await createFlag(db.pool, name, '', ops);
  return name;
}

/** Makes the flag's current step due, as if its --every had passed. */
async function makeDue(flag: string): Promise<void> {
  await db.pool.query(
    `update canon.flag_rollouts set next_step_at = now() - interval '1 second' where flag_name = $1 and status = 'running'`,
    [flag],
  );
}

const mine = (steps: RolloutStep[], flag: string) => steps.filter((s) => s.flag === flag);

describe('auto-rollout', () => {
  it('advances one step per due tick, never twice for overlapping ticks, and completes at --until', async () => {
    const flag = await newFlag();
    const started = await startAutoRollout(db.pool, flag, { step: 10, everySeconds: quarterHour, until: 60 }, ops);
    expect(started).toMatchObject({ from_percent: 0, to_percent: 10 });
    expect(mine(await advanceRollouts(db.pool), flag)).toEqual([]); // not due yet

    // eight ticks at the same moment, each on its own connection
    const clients = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const c = new pg.Client({ connectionString: db.url });
        await c.connect();
        return c;
      }),
    );
    try {
      for (const expected of [20, 30, 40, 50, 60]) {
        await makeDue(flag);
        const steps = (await Promise.all(clients.map((c) => advanceRollouts(c)))).flatMap((s) => mine(s, flag));
        expect(steps.map((s) => [s.action, s.to_percent])).toEqual([['advanced', expected]]);
        expect((await getFlag(db.pool, flag)).rollout_percent).toBe(expected);
        expect(mine(await advanceRollouts(db.pool), flag)).toEqual([]); // the next tick: not due again
      }
      await makeDue(flag);
      const last = (await Promise.all(clients.map((c) => advanceRollouts(c)))).flatMap((s) => mine(s, flag));
      expect(last.map((s) => s.action)).toEqual(['completed']);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
    const f = await getFlag(db.pool, flag);
    expect(f).toMatchObject({ enabled: true, rollout_percent: 60, strategy: 'gradual', rollout: null });
    const hist = (await flagHistory(db.pool, flag)).reverse();
    expect(hist.map((h) => [h.source, h.after.rollout_percent])).toEqual([
      ['create', 100],
      ...[10, 20, 30, 40, 50, 60].map((p) => ['auto-rollout', p]),
    ]);
    expect(hist[2].actor).toBe('canon-tick');
  });

  it('a tick that finds another one in the middle of a step skips that flag', async () => {
    const flag = await newFlag();
    await startAutoRollout(db.pool, flag, { step: 10, everySeconds: quarterHour, until: 100 }, ops);
    await makeDue(flag);
    const first = await db.pool.connect();
    try {
      await first.query('begin');
      expect(mine(await advanceRollouts(first), flag).map((s) => s.action)).toEqual(['advanced']);
      expect(mine(await advanceRollouts(db.pool), flag)).toEqual([]); // the flag is locked: skipped
      await first.query('commit');
    } finally {
      first.release();
    }
    expect(mine(await advanceRollouts(db.pool), flag)).toEqual([]); // committed: not due until --every passes
    expect((await getFlag(db.pool, flag)).rollout_percent).toBe(20);
  });

  it('rolls back to the last good percentage on its own when a handler fails, and alerts report it', async () => {
    await clearQueue(db.pool);
    const flag = await newFlag();
    const type = await jobType(db.pool, uniq('tsa'));
    await startAutoRollout(
      db.pool,
      flag,
      { step: 20, everySeconds: quarterHour, until: 100, guard: parseGuard('success_rate>=0.9,dead=0') },
      ops,
    );
    // step 1 (20 %): healthy runs of jobs decided with the flag on; jobs without it do not count
    for (let i = 0; i < 4; i++) await enqueue(db.pool, type, { [flag]: true });
    await enqueue(db.pool, type, { [flag]: false });
    await runJobs(db.pool, 4, 'succeed');
    await runJobs(db.pool, 1, 'dead');
    await makeDue(flag);
    const [ok] = mine(await advanceRollouts(db.pool), flag);
    expect(ok).toMatchObject({ action: 'advanced', from_percent: 20, to_percent: 40 });
    expect(ok.verdict!.metrics).toMatchObject({ runs: 4, succeeded: 4, dead: 0, success_rate: 1 });

    // step 2 (40 %): the handler starts failing
    for (let i = 0; i < 3; i++) await enqueue(db.pool, type, { [flag]: true });
    await runJobs(db.pool, 1, 'succeed');
    await runJobs(db.pool, 2, 'fail');
    await makeDue(flag);
    const [bad] = mine(await advanceRollouts(db.pool), flag);
    expect(bad).toMatchObject({ action: 'rolled_back', from_percent: 40, to_percent: 20 });
    expect(bad.reason).toMatch(/success_rate=0\.3333, needs >=0\.9/);
    expect(await getFlag(db.pool, flag)).toMatchObject({ enabled: true, rollout_percent: 20, rollout: null });
    const [change] = await flagHistory(db.pool, flag, 1);
    expect(change).toMatchObject({ source: 'auto-rollback', actor: 'canon-tick' });
    expect(change.reason).toMatch(/guard "success_rate>=0.9,dead=0" failed at 40%/);
    const status = (
      await db.pool.query(`select status, end_reason from canon.flag_rollouts where flag_name = $1`, [flag])
    ).rows[0];
    expect(status.status).toBe('rolled_back');

    const alerts = (await computeHealth(db.pool)).steering.auto_rollbacks_24h.filter((a) => a.flag === flag);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ from_percent: 40, to_percent: 20, reason: change.reason });
    await makeDue(flag);
    expect(mine(await advanceRollouts(db.pool), flag)).toEqual([]); // stopped for good
  });

  it('restores the state before the rollout when its first step fails (a dead job)', async () => {
    await clearQueue(db.pool);
    const flag = await newFlag();
    const type = await jobType(db.pool, uniq('anc'));
    await startAutoRollout(
      db.pool,
      flag,
      { step: 10, everySeconds: quarterHour, until: 100, guard: parseGuard('dead=0') },
      ops,
    );
    await enqueue(db.pool, type, { [flag]: true });
    await runJobs(db.pool, 1, 'dead');
    await makeDue(flag);
    const [s] = mine(await advanceRollouts(db.pool), flag);
    expect(s).toMatchObject({ action: 'rolled_back', from_percent: 10, to_percent: 0 });
    expect(await getFlag(db.pool, flag)).toMatchObject({
      enabled: false,
      rollout_percent: 100,
      strategy: 'all',
      killed_at: null,
    });
  });

  it('waits instead of rolling back while there are too few runs to judge', async () => {
    await clearQueue(db.pool);
    const flag = await newFlag();
    const type = await jobType(db.pool, uniq('w'));
    await startAutoRollout(
      db.pool,
      flag,
      { step: 10, everySeconds: quarterHour, until: 100, guard: parseGuard('success_rate>=0.9,runs>=2') },
      ops,
    );
    await makeDue(flag);
    const [w1] = mine(await advanceRollouts(db.pool), flag);
    expect(w1).toMatchObject({ action: 'waiting', to_percent: 10 });
    expect(w1.reason).toMatch(/success_rate: no finished runs yet/);
    await enqueue(db.pool, type, { [flag]: true });
    await runJobs(db.pool, 1, 'succeed');
    const [w2] = mine(await advanceRollouts(db.pool), flag);
    expect(w2).toMatchObject({ action: 'waiting' });
    expect(w2.reason).toMatch(/runs=1, waiting for >=2/);
    await enqueue(db.pool, type, { [flag]: true });
    await runJobs(db.pool, 1, 'succeed');
    const [go] = mine(await advanceRollouts(db.pool), flag);
    expect(go).toMatchObject({ action: 'advanced', to_percent: 20 });
  });

  it('stops when the flag is changed behind its back, and a manual change stops it too', async () => {
    const a = await newFlag();
    await startAutoRollout(db.pool, a, { step: 10, everySeconds: quarterHour, until: 100 }, ops);
    await db.pool.query(`update feature_flags set rollout_percent = 55 where flag_name = $1`, [a]);
    await makeDue(a);
    const [s] = mine(await advanceRollouts(db.pool), a);
    expect(s).toMatchObject({ action: 'stopped', to_percent: 55 });
    expect((await getFlag(db.pool, a)).rollout_percent).toBe(55);

    const b = await newFlag();
    await startAutoRollout(db.pool, b, { step: 10, everySeconds: quarterHour, until: 100 }, ops);
    const r = await changeFlag(db.pool, b, 'rollout', ops, 5);
    expect(r.rollout_stopped).toBe(true);
    const c = await newFlag();
    await startAutoRollout(db.pool, c, { start: 25, step: 10, everySeconds: quarterHour, until: 50 }, ops);
    expect(await stopAutoRollout(db.pool, c, ops)).toBe(25);
    expect(await getFlag(db.pool, c)).toMatchObject({ rollout_percent: 25, rollout: null });
  });

  it('refuses a second rollout of the same flag, and one that starts above --until', async () => {
    const flag = await newFlag();
    await startAutoRollout(db.pool, flag, { step: 10, everySeconds: quarterHour, until: 100 }, ops);
    const e = await startAutoRollout(db.pool, flag, { step: 10, everySeconds: quarterHour, until: 100 }, ops).catch(
      (x) => x,
    );
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(/already has an auto-rollout running/);
    const full = await newFlag();
    await changeFlag(db.pool, full, 'enable', ops);
    const e2 = await startAutoRollout(db.pool, full, { step: 10, everySeconds: quarterHour, until: 100 }, ops).catch(
      (x) => x,
    );
    expect(e2.message).toMatch(/already on for 100% of entities/);
  });
});

describe('guard grammar', () => {
  it('parses the small grammar and prints it back', () => {
    expect(parseGuard('success_rate>=0.9,dead=0')).toEqual([
      { metric: 'success_rate', op: '>=', value: 0.9 },
      { metric: 'dead', op: '=', value: 0 },
    ]);
    expect(formatGuard(parseGuard(' failure_rate < 0.05 , runs>=20,failed<=3'))).toBe(
      'failure_rate<0.05,runs>=20,failed<=3',
    );
  });

  it.each([
    ['', /--guard is empty/],
    ['success_rate>=', /malformed/],
    ['success_rate>=0.9,', /malformed/],
    ['success_rate=>0.9', /malformed/],
    ['success_rate>=-1', /malformed/],
    ['latency<5', /unknown metric "latency"/],
    ['success_rate>=90', /fraction from 0 to 1/],
    ['dead=0.5', /dead is a count/],
    ['runs<5', /runs>=N or runs>N/],
    ['dead=0;drop table x', /malformed/],
  ])('refuses %j', (text, msg) => {
    expect(() => parseGuard(text)).toThrow(msg);
  });
});
