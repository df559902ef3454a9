// Flags on a real Postgres: stable gradual rollout, exact rollback chains, the seed guide's
// hand-written UPDATE in the history, and the kill switch's hold and release.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanonError } from '../src/errors.js';
import {
  changeFlag,
  createFlag,
  type FlagState,
  flagHistory,
  getFlag,
  killPreview,
  releaseFlag,
  rollbackFlag,
} from '../src/steering/flags.js';
import { startAutoRollout } from '../src/steering/rollout.js';
import { createTestDb, type TestDb } from './helpers.js';
import { claim, clearQueue, enqueue, jobType, uniq } from './steering-helpers.js';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('steerflags');
});
afterAll(async () => db.end());

const ops = { actor: 'ops', reason: 'test' };

async function state(name: string): Promise<FlagState> {
  const f = await getFlag(db.pool, name);
  return { enabled: f.enabled, rollout_percent: f.rollout_percent, strategy: f.strategy, killed: f.killed_at !== null };
}

async function newFlag(): Promise<string> {
  const name = uniq('F');
  await createFlag(db.pool, name, 'a test flag', ops);
  return name;
}

describe('gradual rollout', () => {
  it('is on for 30 % ± 2 % of 10,000 entities, and every one of them stays on at 60 %', async () => {
    const flag = await newFlag();
    const onAt = async () =>
      new Set(
        (
          await db.pool.query(
            `select 'ent-' || i as id from generate_series(1, 10000) i where canon.flag_is_on($1, 'ent-' || i)`,
            [flag],
          )
        ).rows.map((r) => r.id as string),
      );
    await changeFlag(db.pool, flag, 'rollout', ops, 30);
    const at30 = await onAt();
    expect(at30.size).toBeGreaterThanOrEqual(2800);
    expect(at30.size).toBeLessThanOrEqual(3200);
    await changeFlag(db.pool, flag, 'rollout', ops, 60);
    const at60 = await onAt();
    expect(at60.size).toBeGreaterThanOrEqual(5800);
    expect(at60.size).toBeLessThanOrEqual(6200);
    for (const id of at30) expect(at60.has(id), id).toBe(true);
  });
});

describe('history and rollback', () => {
  it('after enable → rollout → disable, each rollback restores the earlier state exactly, then refuses', async () => {
    const flag = await newFlag();
    const states: FlagState[] = [await state(flag)];
    await changeFlag(db.pool, flag, 'enable', { actor: 'alice', reason: 'go' });
    states.push(await state(flag));
    await changeFlag(db.pool, flag, 'rollout', { actor: 'bob' }, 30);
    states.push(await state(flag));
    await changeFlag(db.pool, flag, 'disable', { actor: 'carol', reason: 'stop' });
    expect(await state(flag)).toEqual({ enabled: false, rollout_percent: 30, strategy: 'gradual', killed: false });
    for (let i = states.length - 1; i >= 0; i--) {
      const r = await rollbackFlag(db.pool, flag, { actor: 'dave' });
      expect(await state(flag)).toEqual(states[i]);
      expect(r.restored).toEqual(states[i]);
    }
    const before = await flagHistory(db.pool, flag);
    const err = await rollbackFlag(db.pool, flag, { actor: 'dave' }).catch((e) => e);
    expect(err).toBeInstanceOf(CanonError);
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(/no earlier state to roll back to/);
    expect(await flagHistory(db.pool, flag)).toEqual(before);
    // the history says who did what, and which change each rollback undid
    const hist = before.slice().reverse();
    expect(hist.map((h) => [h.actor, h.source])).toEqual([
      ['ops', 'create'],
      ['alice', 'enable'],
      ['bob', 'rollout'],
      ['carol', 'disable'],
      ['dave', 'rollback'],
      ['dave', 'rollback'],
      ['dave', 'rollback'],
    ]);
    expect(hist.slice(4).map((h) => h.undoes)).toEqual([hist[3].id, hist[2].id, hist[1].id]);
    expect(hist[1].reason).toBe('go');
  });

  it('walks back over earlier rollbacks like a stack: A, B, undo B, C, undo C, undo A', async () => {
    const flag = await newFlag();
    const s0 = await state(flag);
    await changeFlag(db.pool, flag, 'rollout', ops, 10); // A
    const sA = await state(flag);
    await changeFlag(db.pool, flag, 'rollout', ops, 20); // B
    await rollbackFlag(db.pool, flag, ops); // undo B
    expect(await state(flag)).toEqual(sA);
    await changeFlag(db.pool, flag, 'enable', ops); // C
    await rollbackFlag(db.pool, flag, ops); // undo C
    expect(await state(flag)).toEqual(sA);
    await rollbackFlag(db.pool, flag, ops); // undo A
    expect(await state(flag)).toEqual(s0);
  });

  it('two concurrent rollbacks undo two different changes, never the same one twice', async () => {
    const flag = await newFlag();
    await changeFlag(db.pool, flag, 'rollout', ops, 10);
    await changeFlag(db.pool, flag, 'rollout', ops, 20);
    await changeFlag(db.pool, flag, 'rollout', ops, 30);
    const rs = await Promise.all([1, 2].map(() => rollbackFlag(db.pool, flag, ops)));
    expect(new Set(rs.map((r) => r.undid)).size).toBe(2);
    expect((await state(flag)).rollout_percent).toBe(10);
  });

  it("records the seed guide's hand-written UPDATE with the database user as actor, and can roll it back", async () => {
    const flag = await newFlag();
    await db.pool.query(`UPDATE feature_flags \nSET enabled = true, updated_at = NOW()\nWHERE flag_name = $1`, [flag]);
    const user = (await db.pool.query('select session_user as u')).rows[0].u;
    const [last] = await flagHistory(db.pool, flag, 1);
    expect(last).toMatchObject({ actor: user, source: 'sql', reason: null });
    expect(last.before).toMatchObject({ enabled: false });
    expect(last.after).toMatchObject({ enabled: true });
    expect((await getFlag(db.pool, flag)).updated_by).toBe(user);
    await rollbackFlag(db.pool, flag, ops);
    expect((await state(flag)).enabled).toBe(false);
  });

  it('refuses an unknown flag with one line naming the known ones, and a percent outside 0–100', async () => {
    const e1 = await changeFlag(db.pool, 'NOPE', 'enable', ops).catch((e) => e);
    expect(e1).toBeInstanceOf(CanonError);
    expect(e1.exitCode).toBe(2);
    expect(e1.message).toMatch(/^unknown flag "NOPE" \(known flags: /);
    const flag = await newFlag();
    const e2 = await changeFlag(db.pool, flag, 'rollout', ops, 101).catch((e) => e);
    expect(e2.exitCode).toBe(2);
    expect((await flagHistory(db.pool, flag)).length).toBe(1);
  });
});

describe('kill switch', () => {
  it('turns the flag off, stops its rollout, holds the queued jobs it allowed and releases them when it is on again', async () => {
    await clearQueue(db.pool);
    const flag = await newFlag();
    const type = await jobType(db.pool, uniq('kt'));
    await startAutoRollout(db.pool, flag, { step: 10, everySeconds: 900, until: 100 }, ops);
    const allowed = [
      await enqueue(db.pool, type, { [flag]: true }),
      await enqueue(db.pool, type, { [flag]: true, OTHER: false }),
    ];
    const other = await enqueue(db.pool, type, { [flag]: false });
    expect(await killPreview(db.pool, flag)).toBe(2);

    const k = await changeFlag(db.pool, flag, 'kill', { actor: 'oncall', reason: 'TSA signs garbage' });
    expect(k.held_jobs).toBe(2);
    expect(k.rollout_stopped).toBe(true);
    expect(k.flag).toMatchObject({ enabled: false, killed_by: 'oncall', held_jobs: 2, rollout: null });
    // a decider that read the flag before the kill: its job is held on arrival
    const late = await enqueue(db.pool, type, { [flag]: true });
    const holds = (
      await db.pool.query(`select id, hold_reason from canon.jobs where id = any($1) order by id`, [
        [...allowed, other, late],
      ])
    ).rows;
    expect(holds.map((h) => h.hold_reason)).toEqual([
      `flag_killed:${flag}`,
      `flag_killed:${flag}`,
      null,
      `flag_killed:${flag}`,
    ]);
    // claims skip held jobs without spending attempts
    const got = await claim(db.pool, 10);
    expect(got.map((c) => c.id)).toEqual([other]);
    expect(
      (await db.pool.query(`select max(attempts)::int as a from canon.jobs where id = any($1)`, [[...allowed, late]]))
        .rows[0].a,
    ).toBe(0);
    const [killRow] = await flagHistory(db.pool, flag, 1);
    expect(killRow).toMatchObject({ actor: 'oncall', source: 'kill', reason: 'TSA signs garbage' });

    // rolling the kill back turns the flag on again and releases the held jobs
    await rollbackFlag(db.pool, flag, ops);
    expect((await getFlag(db.pool, flag)).held_jobs).toBe(0);
    expect((await claim(db.pool, 10)).map((c) => c.id).sort()).toEqual([...allowed, late].sort());
  });

  it('release lets held jobs run while the flag stays off', async () => {
    await clearQueue(db.pool);
    const flag = await newFlag();
    await changeFlag(db.pool, flag, 'enable', ops);
    const type = await jobType(db.pool, uniq('kr'));
    const job = await enqueue(db.pool, type, { [flag]: true });
    await changeFlag(db.pool, flag, 'kill', ops);
    expect(await claim(db.pool)).toEqual([]);
    expect(await releaseFlag(db.pool, flag, { actor: 'oncall', reason: 'those are fine' })).toBe(1);
    expect((await getFlag(db.pool, flag)).enabled).toBe(false);
    expect((await claim(db.pool)).map((c) => c.id)).toEqual([job]);
    const log = (
      await db.pool.query(
        `select actor, reason, detail from canon.steering_log where target = $1 and action = 'release'`,
        [flag],
      )
    ).rows;
    expect(log).toEqual([{ actor: 'oncall', reason: 'those are fine', detail: { released_jobs: 1 } }]);
  });
});
