// Steering before any worker ran: `canon jobs pause|resume` and `canon breakers open|close`
// know the configured pipeline's types (--pipeline, CANON_PIPELINE, the example by default)
// on a freshly migrated database, as its owner and as a canon_operator; the pause then holds
// when the first worker starts. `canon contracts check` is fed the pipeline's types.

import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { appendEvent } from '../src/ledger.js';
import { canon, createTestDb, oneLineError, root, type TestDb } from './helpers.js';
import { env, FAST } from './seeing-common.js';

const dbs: TestDb[] = [];
const operators: { name: string; url: string; db: TestDb }[] = [];
afterAll(async () => {
  for (const o of operators) {
    await o.db.pool
      .query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = $1`, [o.name])
      .catch(() => {});
    await o.db.pool.query(`drop owned by ${o.name}`).catch(() => {});
    await o.db.pool.query(`drop user if exists ${o.name}`).catch(() => {});
  }
  for (const d of dbs) await d.end();
});

/** A database as `canon migrate` leaves it: the whitelist holds canon's own `decide` only. */
async function fresh(label: string): Promise<TestDb> {
  const db = await createTestDb(label);
  dbs.push(db);
  expect((await db.pool.query(`select array_agg(name) as names from canon.job_types`)).rows[0].names).toEqual([
    'decide',
  ]);
  return db;
}

const run = (db: TestDb, args: string[], extra: Record<string, string> = {}, url = db.url) =>
  canon(args, { url, env: env(extra) });
const jsonOf = (r: { stdout: string }) => JSON.parse(r.stdout);
const jobType = async (db: TestDb, name: string) =>
  (await db.pool.query(`select * from canon.job_types where name = $1`, [name])).rows[0];

describe('steering knows the configured pipeline before any worker ran', () => {
  it('jobs pause protect on a fresh database declares protect from the example and pauses it; the first worker keeps it paused', async () => {
    const db = await fresh('steer-fresh');
    const r = await run(db, ['jobs', 'pause', 'protect', '--reason', 'before go-live', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(jsonOf(r)).toMatchObject({
      type: 'protect',
      lane: 'execution',
      paused: true,
      changed: true,
      declared_from: expect.stringMatching(/pipelines\/example\/index\.js$/),
    });
    expect(await jobType(db, 'protect')).toMatchObject({
      lane: 'execution',
      paused: true,
      pause_reason: 'before go-live',
      declared_by: 'pipeline:example',
    });
    // only the type asked about is declared; the next command finds it known and loads nothing
    expect(await jobType(db, 'tsa')).toBeUndefined();
    const again = await run(db, ['jobs', 'pause', 'protect', '--json']);
    expect(jsonOf(again)).toMatchObject({ changed: false, declared_from: null });
    const human = await run(db, ['jobs', 'resume', 'anchor']);
    expect(human.exitCode, human.stderr).toBe(0);
    expect(human.stdout).toMatch(
      /^anchor: declared from pipeline .*pipelines\/example\/index\.js \(no worker had declared it yet\)\nanchor was already running: nothing changed$/,
    );

    // the example's worker starts: its sync keeps the pause, so protect waits
    await appendEvent(db.pool, { entityId: 'fresh-1', kind: 'document.created', payload: { content: 'hi' } });
    expect((await run(db, ['work', '--once'])).exitCode).toBe(0);
    expect(
      (await db.pool.query(`select type, status from canon.jobs where entity_id = 'fresh-1' and lane = 'execution'`))
        .rows,
    ).toEqual([{ type: 'protect', status: 'queued' }]);
    expect((await jobType(db, 'protect')).paused).toBe(true);
  });

  it('--pipeline and CANON_PIPELINE choose the pipeline; its tuning is what the type gets', async () => {
    const db = await fresh('steer-pipeline');
    const b = await run(db, ['breakers', 'open', 'tsa', '--pipeline', FAST, '--for', '10m', '--json']);
    expect(b.exitCode, b.stderr).toBe(0);
    expect(jsonOf(b)).toMatchObject({
      job_type: 'tsa',
      state: 'open',
      declared_from: 'test/fixtures/fast-pipeline.mjs',
    });
    expect(await jobType(db, 'tsa')).toMatchObject({ declared_by: 'pipeline:fast', timeout_seconds: '2' });
    const p = await run(db, ['jobs', 'pause', 'anchor', '--json'], { CANON_PIPELINE: FAST });
    expect(p.exitCode, p.stderr).toBe(0);
    expect(jsonOf(p).declared_from).toBe('test/fixtures/fast-pipeline.mjs');
    expect((await jobType(db, 'anchor')).declared_by).toBe('pipeline:fast');
    // canon's own decision type needs no pipeline
    const d = await run(db, ['jobs', 'pause', 'decide', '--json'], { CANON_PIPELINE: '/nonexistent.mjs' });
    expect(d.exitCode, d.stderr).toBe(0);
    expect(jsonOf(d)).toMatchObject({ type: 'decide', paused: true, declared_from: null });
  });

  it('a type neither the database nor the pipeline knows is refused with one line naming the pipeline and its types', async () => {
    const db = await fresh('steer-unknown');
    for (const [args, extra, msg] of [
      [
        ['jobs', 'pause', 'ocr'],
        {},
        /^canon: unknown job type "ocr": the database does not know it and pipeline example \(.*pipelines\/example\/index\.js\) does not declare it \(it declares protect, tsa, anchor\); pass --pipeline PATH or set CANON_PIPELINE for another pipeline$/,
      ],
      [
        ['breakers', 'close', 'ocr', '--pipeline', FAST],
        {},
        /pipeline fast \(test\/fixtures\/fast-pipeline\.mjs\) does not declare it/,
      ],
      [['jobs', 'pause', 'ocr'], { CANON_PIPELINE: path.join(root, 'nope.mjs') }, /pipeline nope\.mjs: file not found/],
    ] as const) {
      const r = await run(db, [...args], extra);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(oneLineError(r)).toMatch(msg);
    }
    expect((await db.pool.query(`select count(*)::int as n from canon.job_types`)).rows[0].n).toBe(1);
  });

  it('a canon_operator can do it too (canon.declare_job_type), and can re-drive; switching the core trigger is the owner’s', async () => {
    const db = await fresh('steer-operator');
    const name = `t_op_${randomBytes(4).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    await db.pool.query(`create user ${name} login password '${password}' in role canon_operator`);
    const u = new URL(db.url);
    u.username = name;
    u.password = password;
    operators.push({ name, url: u.toString(), db });
    const p = await run(db, ['jobs', 'pause', 'protect', '--json'], {}, u.toString());
    expect(p.exitCode, p.stderr).toBe(0);
    expect(await jobType(db, 'protect')).toMatchObject({ paused: true, declared_by: 'pipeline:example' });

    await db.pool.query('alter table canon.events disable trigger canon_core_trigger');
    try {
      await appendEvent(db.pool, { entityId: 'op-1', kind: 'document.created', payload: { content: 'x' } });
      const t = await run(db, ['gateway', 'trigger', 'on'], {}, u.toString());
      expect(t.exitCode).toBe(2);
      expect(oneLineError(t)).toMatch(
        /^canon: only the owner of canon\.events can switch the core trigger on \(must be owner/,
      );
    } finally {
      await db.pool.query('alter table canon.events enable trigger canon_core_trigger');
    }
    const r = await run(db, ['jobs', 'redrive', 'op-1', '--json'], {}, u.toString());
    expect(r.exitCode, r.stderr).toBe(0);
    expect(
      (await db.pool.query(`select actor, action from canon.job_actions where job_id = $1`, [jsonOf(r).jobs[0].job_id]))
        .rows[0],
    ).toEqual({ actor: expect.any(String), action: 'redrive' });
  });
});

describe("job commands filter by the pipeline's types before any worker ran", () => {
  it('dead-jobs and jobs retry|cancel --type accept a type of the pipeline (nothing is dead yet) and refuse any other', async () => {
    const db = await fresh('deadjobs-pipeline');
    const d = await run(db, ['dead-jobs', '--type', 'protect', '--json']);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(jsonOf(d).summary).toEqual({ total_dead: 0, by_type: {}, by_reason: {} });
    const r = await run(db, [
      'jobs',
      'retry',
      '--type',
      'seal',
      '--pipeline',
      'test/fixtures/notary-pipeline.mjs',
      '--dry-run',
      '--json',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(jsonOf(r)).toMatchObject({ dry_run: true, matched: 0 });
    const bad = await run(db, ['jobs', 'cancel', '--type', 'seal', '--dry-run']);
    expect(bad.exitCode).toBe(2);
    expect(oneLineError(bad)).toMatch(
      /^canon: unknown job type "seal": the database does not know it and pipeline example/,
    );
    // reading declares nothing
    expect((await db.pool.query(`select count(*)::int as n from canon.job_types`)).rows[0].n).toBe(1);
  });
});

describe('contracts check knows the pipeline', () => {
  it('passes on a fresh database, listing the types no worker declared yet; fails on a pipeline type in the decision lane', async () => {
    const db = await fresh('contracts-pipeline');
    const ok = await run(db, ['contracts', 'check', '--json']);
    expect(ok.exitCode, ok.stdout).toBe(0);
    const wl = jsonOf(ok).contracts.find((c: { name: string }) => c.name === 'job_types_whitelisted');
    expect(wl).toMatchObject({ ok: true });
    expect(wl.detail).toMatch(/pipeline types not declared yet: protect, tsa, anchor \(canon work declares them/);
    expect(wl.detail).not.toMatch(/pipeline sync/);
    await db.pool.query(
      `insert into canon.job_types (name, lane, max_attempts, timeout_seconds) values ('tsa', 'decision', 3, 60)`,
    );
    const bad = await run(db, ['contracts', 'check', '--json']);
    expect(bad.exitCode).toBe(1);
    const failed = jsonOf(bad).contracts.filter((c: { ok: boolean }) => !c.ok);
    expect(failed.map((c: { name: string }) => c.name)).toEqual(['job_types_whitelisted']);
    expect(failed[0].detail).toMatch(/^pipeline types whitelisted in another lane: tsa/);
    // the same database, another pipeline without tsa: the contract holds
    const other = await run(db, ['contracts', 'check', '--json', '--pipeline', 'test/fixtures/notary-pipeline.mjs']);
    expect(other.exitCode, other.stdout + other.stderr).toBe(0);
  });
});
