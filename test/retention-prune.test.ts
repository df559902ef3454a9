// `canon prune` on a real Postgres: finished jobs and runs of settled entities are removed in
// small batches while a worker runs and documents keep arriving; the ledger is untouched
// (audit verify), every status stays what it was (status verify, and row by row), the gap
// rule finds nothing, trace and diagnose answer for pruned entities from the ledger, a
// provenance report taken before the prune still verifies, and an entity an operator retried
// keeps its jobs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canon, createTestDb, oneLineError, spawnCanon, type TestDb } from './helpers.js';
import { doc, env, FAST, json, workOnce } from './seeing-common.js';

let db: TestDb;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-prune-'));
const report = path.join(dir, 'before.json');
const settled = [...Array.from({ length: 12 }, (_, i) => `pr-${i}`), 'pr-dead'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const statusRows = async () =>
  (
    await db.pool.query(`select entity_id, status, health_score, jobs_total, jobs_succeeded, jobs_failed, jobs_cancelled,
                                jobs_dead, runs_total, runs_succeeded, runs_failed, runs_cancelled
                           from canon.entity_status order by entity_id`)
  ).rows;
const jobsOf = async (ids: string[]) =>
  Number((await db.pool.query('select count(*) from canon.jobs where entity_id = any ($1)', [ids])).rows[0].count);
const ok = async (args: string[]) => {
  const r = await canon(args, { url: db.url, env: env() });
  expect(r.exitCode, `${args.join(' ')}: ${r.stderr}${r.stdout}`).toBe(0);
  return r;
};

beforeAll(async () => {
  db = await createTestDb('prune');
  for (const id of settled) await doc(db, id, id === 'pr-dead' ? 'fails #permanent' : `document ${id}`);
  await doc(db, 'pr-retried', 'fails #permanent');
  expect((await workOnce(db)).exitCode).toBe(0);
  // an operator retried pr-retried's dead job: that record stays with its jobs
  const dead = (await db.pool.query(`select id from canon.jobs where entity_id = 'pr-retried' and status = 'failed'`))
    .rows[0].id;
  await ok(['jobs', 'retry', String(dead), '-m', 'test']);
  expect((await workOnce(db)).exitCode).toBe(0);
  await ok(['report:provenance', 'pr-0', 'pr-dead', '-o', report]);
  await sleep(1200); // the work above ended more than a second ago: --older-than 1s reaches it
});
afterAll(async () => db.end());

describe('canon prune', () => {
  it('--dry-run counts what it would remove and changes nothing', async () => {
    const before = await jobsOf(settled);
    const r = await json(db, ['prune', '--older-than', '1s', '--dry-run']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.data).toMatchObject({ dry_run: true, run_id: null, entities: settled.length, complete: true });
    expect(r.data.jobs).toBe(before);
    expect(r.data.runs).toBeGreaterThanOrEqual(before);
    expect(await jobsOf(settled)).toBe(before);
    expect((await db.pool.query('select count(*)::int as n from canon.prune_runs')).rows[0].n).toBe(0);
  });

  it('prunes online, in small batches, while a worker runs and documents arrive; ledger and status unchanged', async () => {
    const statusBefore = await statusRows();
    const ledger = async () =>
      (
        await db.pool.query(
          `select position, encode(hash, 'hex') as hash from canon.events where entity_id not like 'live-%' order by position`,
        )
      ).rows;
    const ledgerBefore = await ledger();
    const retriedJobs = await jobsOf(['pr-retried']);
    const worker = spawnCanon(['work', '--pipeline', FAST, '--log-level', 'error'], { url: db.url, env: env() });
    let arriving = true;
    const arrivals = (async () => {
      for (let i = 0; arriving; i++) {
        await doc(db, `live-${i}`);
        await sleep(50);
      }
    })();
    const r = await json(db, ['prune', '--older-than', '1s', '--batch-size', '3']);
    arriving = false;
    await arrivals;
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.data.entities).toBeGreaterThanOrEqual(settled.length);
    expect(r.data.batches).toBeGreaterThan(3);
    expect(await jobsOf(settled)).toBe(0);
    expect(await jobsOf(['pr-retried'])).toBe(retriedJobs);
    const rec = (await db.pool.query('select * from canon.prune_runs where id = $1', [r.data.run_id])).rows[0];
    expect(rec).toMatchObject({ status: 'finished', batches: r.data.batches, batch_size: 3 });
    expect([rec.entities, rec.jobs, rec.runs].map(Number)).toEqual([r.data.entities, r.data.jobs, r.data.runs]);

    worker.kill('SIGTERM');
    expect((await worker).exitCode).toBe(0);
    expect((await workOnce(db)).exitCode).toBe(0);
    // the ledger grew by the arrivals only: every event from before is still there, unchanged
    expect(await ledger()).toEqual(ledgerBefore);
    await ok(['audit', 'verify']);
    await ok(['status', 'verify']);
    const after = await statusRows();
    for (const row of statusBefore) expect(after.find((x) => x.entity_id === row.entity_id)).toEqual(row);
    const h = await json(db, ['health', '--threshold', 'gap_grace_seconds=0']);
    expect(h.data.event_to_job_gap).toBe(0);
  });

  it('trace, diagnose, status and provenance still answer for pruned entities, from the ledger', async () => {
    const t = await json(db, ['trace', 'pr-0']);
    expect(t.exitCode, t.stderr).toBe(0);
    expect(t.data.counts).toMatchObject({ jobs: 0, runs: 0, events: 7 });
    expect(t.data.pruned).toMatchObject({ entities: 1, jobs: 7, runs: 7 });
    // one root: the document; every later event hangs under the event that caused it
    expect(t.data.tree).toHaveLength(1);
    const depth = (n: { children: unknown[] }): number =>
      1 + Math.max(0, ...(n.children as { children: unknown[] }[]).map(depth));
    expect(depth(t.data.tree[0])).toBe(7);
    const human = await ok(['trace', 'pr-0']);
    expect(human.stdout).not.toMatch(/NO JOB/);
    expect(human.stdout).toMatch(/its job was pruned/);

    const d = await json(db, ['diagnose', 'pr-0']);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(d.data).toMatchObject({ verdict: 'done', problem: false });
    expect(d.data.summary).toMatch(/^done \(completed\): its jobs and runs were pruned/);
    const dd = await json(db, ['diagnose', 'pr-dead']);
    expect(dd.data).toMatchObject({ verdict: 'done' });
    expect(dd.data.summary).toMatch(/^done \(failed\)/);
    expect(dd.data.evidence.join('\n')).toMatch(/dead when pruned: protect/);

    const s = await json(db, ['status', 'pr-dead']);
    expect(s.data).toMatchObject({ status: 'failed', jobs_dead: 1 });
    // a report taken before the prune: its runs are gone by retention, everything else holds
    const check = await canon(['report:debug-provenance', report, '--verbose'], { url: db.url, env: env() });
    expect(check.exitCode, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toMatch(/run pruned at/);
  });

  it('an entity pruned and active again: new work is decided from the ledger, never required twice; a second prune adds up', async () => {
    const required = async () =>
      Number(
        (
          await db.pool.query(
            `select count(*) from canon.events where entity_id = 'pr-1' and kind like 'job.%.required'`,
          )
        ).rows[0].count,
      );
    const before = await required();
    await db.pool.query(`select canon.append_event('pr-1', 'note.added', '{}'::jsonb)`);
    expect((await workOnce(db)).exitCode).toBe(0);
    // the decision read the history: every step has its result, so nothing is required again
    expect(await required()).toBe(before);
    const live = (await db.pool.query(`select lane, status from canon.jobs where entity_id = 'pr-1'`)).rows;
    expect(live).toEqual([{ lane: 'decision', status: 'succeeded' }]);
    await ok(['status', 'verify']);
    expect((await json(db, ['status', 'pr-1'])).data).toMatchObject({ status: 'completed', jobs_total: 8 });
    await sleep(1100);
    const again = await json(db, ['prune', '--older-than', '1s']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(await jobsOf(['pr-1'])).toBe(0);
    expect((await json(db, ['status', 'pr-1'])).data).toMatchObject({ status: 'completed', jobs_total: 8 });
    await ok(['status', 'verify']);
    await ok(['audit', 'verify']);
    const d = await json(db, ['diagnose', 'pr-1']);
    expect(d.data.verdict).toBe('done');
  });

  it('never hides a gap: an entity whose required event lost its job keeps its jobs, and health still counts it', async () => {
    await doc(db, 'pr-gap');
    expect((await workOnce(db)).exitCode).toBe(0);
    // someone deletes the anchor job by hand: job.anchor.required is left without its job
    await db.pool.query(
      `delete from canon.job_runs where job_id in (select id from canon.jobs where entity_id = 'pr-gap' and type = 'anchor')`,
    );
    await db.pool.query(`delete from canon.jobs where entity_id = 'pr-gap' and type = 'anchor'`);
    const kept = await jobsOf(['pr-gap']);
    await sleep(1100);
    const r = await json(db, ['prune', '--older-than', '1s']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await jobsOf(['pr-gap'])).toBe(kept);
    const h = await json(db, ['health', '--threshold', 'gap_grace_seconds=0']);
    expect(h.data.event_to_job_gap_by_lane.execution).toBe(1);
    expect((await json(db, ['diagnose', 'pr-gap', '--threshold', 'gap_grace_seconds=0'])).data.verdict).toBe(
      'not_enqueued',
    );
  });

  it('refuses bad arguments in one line, changing nothing', async () => {
    const runs = async () => Number((await db.pool.query('select count(*) from canon.prune_runs')).rows[0].count);
    const n = await runs();
    for (const [args, msg] of [
      [['prune'], /--older-than/],
      [['prune', '--older-than', '0'], /--older-than must be more than 0/],
      [['prune', '--older-than', 'soon'], /--older-than must be a duration/],
      [['prune', '--older-than', '30d', '--batch-size', '0'], /--batch-size must be between 1 and 10000/],
    ] as const) {
      const r = await canon([...args], { url: db.url });
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(oneLineError(r)).toMatch(msg);
    }
    expect(await runs()).toBe(n);
  });
});
