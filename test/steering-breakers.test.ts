// Circuit breakers and pausing on a real Postgres: the breaker opens after N consecutive
// handler failures, holds its type's jobs without spending attempts, lets exactly one probe
// through after the cooldown (even with concurrent claimers), and closes or reopens on the
// probe's outcome; a paused type is never claimed.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { computeHealth } from '../src/observe/health.js';
import { forceBreaker, listBreakers } from '../src/steering/breakers.js';
import { setPaused } from '../src/steering/pause.js';
import { createTestDb, type TestDb } from './helpers.js';
import { claim, clearQueue, enqueue, fail, jobType, runJobs, succeed, uniq, workerId } from './steering-helpers.js';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('steerbreak');
});
afterAll(async () => db.end());
beforeEach(async () => clearQueue(db.pool));

const ops = { actor: 'ops', reason: 'test' };

async function breaker(type: string) {
  return (
    await db.pool.query(
      `select state, failure_count, probe_job_id, next_attempt_at > now() as cooling, reason from canon.breakers where job_type = $1`,
      [type],
    )
  ).rows[0];
}

async function attempts(ids: number[]): Promise<number[]> {
  return (await db.pool.query(`select attempts from canon.jobs where id = any($1) order by id`, [ids])).rows.map(
    (r) => r.attempts,
  );
}

/** The cooldown has passed (instead of sleeping through it). */
async function coolDown(type: string): Promise<void> {
  await db.pool.query(`update canon.breakers set next_attempt_at = now() - interval '1 second' where job_type = $1`, [
    type,
  ]);
}

describe('circuit breaker', () => {
  it('opens after N consecutive failures, holds jobs without spending attempts, and closes after a successful probe', async () => {
    const type = await jobType(db.pool, uniq('brk'), { threshold: 3 });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await enqueue(db.pool, type));

    // a success in between resets the count: only consecutive failures open it
    await runJobs(db.pool, 2, 'fail');
    await runJobs(db.pool, 1, 'succeed');
    expect(await breaker(type)).toMatchObject({ state: 'closed', failure_count: 0 });
    await runJobs(db.pool, 2, 'fail');
    expect(await breaker(type)).toMatchObject({ state: 'closed', failure_count: 2 });
    // a failure that is not the handler's (a precondition) does not count
    await fail(db.pool, (await claim(db.pool))[0], { reason: 'precondition_failed' });
    expect(await breaker(type)).toMatchObject({ failure_count: 2 });
    await runJobs(db.pool, 1, 'fail');
    const open = await breaker(type);
    expect(open).toMatchObject({ state: 'open', failure_count: 3, cooling: true });
    expect(open.reason).toMatch(/^3 consecutive failures \(last: job \d+, handler_error: boom\)/);

    // held: queued, not claimed, attempts untouched
    const queued = (
      await db.pool.query(`select id from canon.jobs where type = $1 and status = 'queued' order by id`, [type])
    ).rows.map((r) => r.id);
    expect(queued.length).toBe(4);
    const before = await attempts(queued);
    expect(await claim(db.pool, 10)).toEqual([]);
    expect(await attempts(queued)).toEqual(before);

    // after the cooldown, eight concurrent claimers get exactly one probe between them
    await coolDown(type);
    const claims = (await Promise.all(Array.from({ length: 8 }, () => claim(db.pool, 3)))).flat();
    expect(claims.length).toBe(1);
    const probe = claims[0];
    expect(await breaker(type)).toMatchObject({ state: 'half_open', probe_job_id: probe.id });
    expect(probe.attempts).toBe(before[queued.indexOf(probe.id)] + 1);

    // a failed probe reopens it for another cooldown
    await fail(db.pool, probe);
    expect(await breaker(type)).toMatchObject({ state: 'open', cooling: true, probe_job_id: null });
    expect(await claim(db.pool, 10)).toEqual([]);

    // a successful probe closes it and the type runs again
    await coolDown(type);
    const [probe2] = await claim(db.pool, 10);
    await succeed(db.pool, probe2);
    expect(await breaker(type)).toMatchObject({ state: 'closed', failure_count: 0, probe_job_id: null });
    expect((await claim(db.pool, 10)).length).toBe(3); // 5 jobs, one succeeded earlier, the probe just now

    const log = (
      await db.pool.query(`select action, actor from canon.steering_log where target = $1 order by id`, [type])
    ).rows;
    expect(log.map((l) => l.action)).toEqual(['open', 'half_open', 'open', 'half_open', 'closed']);
  });

  it('a probe that ends without a verdict (a precondition failure) lets the next claim probe again', async () => {
    const type = await jobType(db.pool, uniq('rel'), { threshold: 1 });
    await enqueue(db.pool, type);
    await enqueue(db.pool, type);
    await runJobs(db.pool, 1, 'fail');
    await coolDown(type);
    const [probe] = await claim(db.pool, 5);
    await fail(db.pool, probe, { reason: 'precondition_failed' });
    expect(await breaker(type)).toMatchObject({ state: 'open', cooling: false });
    expect((await claim(db.pool, 5)).length).toBe(1);
  });

  it('leaves other types alone, and can be forced open and closed by an operator', async () => {
    const sick = await jobType(db.pool, uniq('sick'), { threshold: 1 });
    const well = await jobType(db.pool, uniq('well'));
    await enqueue(db.pool, sick);
    await runJobs(db.pool, 1, 'fail');
    const wellJob = await enqueue(db.pool, well);
    expect((await claim(db.pool, 10)).map((c) => c.id)).toEqual([wellJob]);

    const closed = await forceBreaker(db.pool, sick, 'closed', { actor: 'oncall', reason: 'service restored' });
    expect(closed).toMatchObject({
      state: 'closed',
      failure_count: 0,
      updated_by: 'oncall',
      reason: 'service restored',
    });
    expect((await claim(db.pool, 10)).length).toBe(1);

    const opened = await forceBreaker(db.pool, well, 'open', { actor: 'oncall', reason: 'maintenance' }, 3600);
    expect(opened).toMatchObject({ state: 'open', reason: 'maintenance' });
    await enqueue(db.pool, well);
    expect(await claim(db.pool, 10)).toEqual([]);
    const listed = (await listBreakers(db.pool)).find((b) => b.job_type === well)!;
    expect(listed).toMatchObject({ state: 'open', queued: 1, threshold: 10 });
    expect((await computeHealth(db.pool)).steering.breakers_not_closed.map((b) => b.job_type)).toContain(well);

    const e1 = await forceBreaker(db.pool, 'no_such_type', 'open', ops).catch((e) => e);
    expect(e1.exitCode).toBe(2);
    expect(e1.message).toBe('unknown job type "no_such_type"');
    const e2 = await forceBreaker(db.pool, 'decide', 'open', ops).catch((e) => e);
    expect(e2.message).toMatch(/decision-lane type; breakers guard execution types/);
  });
});

describe('pausing a job type', () => {
  it('is not claimed while paused, keeps its attempts, and runs again when resumed', async () => {
    const type = await jobType(db.pool, uniq('pz'));
    const job = await enqueue(db.pool, type);
    const p = await setPaused(db.pool, type, true, { actor: 'oncall', reason: 'TSA outage' });
    expect(p).toMatchObject({
      changed: true,
      paused: true,
      paused_by: 'oncall',
      pause_reason: 'TSA outage',
      queued: 1,
    });
    expect(await claim(db.pool, 10)).toEqual([]);
    expect(await attempts([job])).toEqual([0]);
    expect((await computeHealth(db.pool)).steering.paused_types.map((t) => t.job_type)).toEqual([type]);
    expect(await setPaused(db.pool, type, true, ops)).toMatchObject({ changed: false, paused_by: 'oncall' });

    const r = await setPaused(db.pool, type, false, { actor: 'oncall', reason: 'TSA back' });
    expect(r).toMatchObject({ changed: true, paused: false, paused_by: null });
    expect((await claim(db.pool, 10)).map((c) => c.id)).toEqual([job]);
    const log = (
      await db.pool.query(`select action, actor, reason from canon.steering_log where target = $1 order by id`, [type])
    ).rows;
    expect(log).toEqual([
      { action: 'pause', actor: 'oncall', reason: 'TSA outage' },
      { action: 'resume', actor: 'oncall', reason: 'TSA back' },
    ]);
  });

  it('pausing the decision type stops decisions; an unknown type is refused', async () => {
    await setPaused(db.pool, 'decide', true, ops);
    try {
      await db.pool.query(`select canon.append_event($1, 'document.created')`, [`doc-${uniq('p')}`]);
      expect((await db.pool.query(`select * from canon.claim_jobs('decision', $1, 5)`, [workerId()])).rows).toEqual([]);
    } finally {
      await setPaused(db.pool, 'decide', false, ops);
    }
    const e = await setPaused(db.pool, 'nope', true, ops).catch((x) => x);
    expect(e.exitCode).toBe(2);
  });
});

describe('lock order of a burial (docs/decisions/0012)', () => {
  // A completion locks its entity (the result event) before its type's breaker (the run's
  // end); a run that fails for good must take them in the same order, or a failing and a
  // succeeding run of one type on one entity can deadlock. With the entity's row held by
  // another session, fail_run must wait for it before touching the breaker.
  const held = async (type: string, entity: string, act: (worker: string, runId: number) => Promise<unknown>) => {
    const t = await jobType(db.pool, uniq(type), { maxAttempts: 1 });
    // the type has a breaker row already (it has run before), so its trigger locks that row
    await db.pool.query(`insert into canon.breakers (job_type) values ($1) on conflict do nothing`, [t]);
    await enqueue(db.pool, t, {}, entity);
    const [c] = await claim(db.pool, 1);
    const holder = await db.pool.connect();
    const probe = await db.pool.connect();
    try {
      await holder.query('begin');
      await holder.query(`select 1 from canon.entities where id = $1 for update`, [entity]);
      const pending = act(c.worker, c.run_id);
      // wait until the burial is blocked on the entity's row
      for (let i = 0; i < 200; i++) {
        const waiting = (
          await db.pool.query(
            `select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database() and pid <> pg_backend_pid()`,
          )
        ).rows[0].n;
        if (waiting > 0) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      // the breaker is still free: the burial has not reached it
      await probe.query('begin');
      const b = await probe
        .query(`select job_type from canon.breakers where job_type = $1 for update nowait`, [t])
        .then(
          () => 'free',
          (e: Error) => e.message,
        );
      await probe.query('rollback');
      await holder.query('commit');
      await pending;
      return b;
    } finally {
      holder.release();
      probe.release();
    }
  };

  it('fail_run takes the entity before the breaker when it buries the job', async () => {
    const entity = `bury-${uniq('e')}`;
    const b = await held('fail', entity, (w, runId) =>
      db.pool.query(`select canon.fail_run($1, $2, 'boom', true)`, [runId, w]),
    );
    expect(b).toBe('free');
    expect(
      (
        await db.pool.query(`select count(*)::int as n from canon.jobs where entity_id = $1 and status = 'failed'`, [
          entity,
        ])
      ).rows[0].n,
    ).toBe(1);
  });
});
