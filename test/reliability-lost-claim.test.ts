// A claim commits without waiting for its WAL flush (docs/decisions/0001). This file loses one for
// real, on a Postgres of its own: the WAL writer is frozen so nothing flushes the claim, then
// killed, which makes the server crash and recover from what is on disk. The claim and the
// sequence record behind its run id are gone; the job is queued again. What must hold: the
// lost run's id is never handed out again (the worker still holding it would otherwise
// complete someone else's run), its completion and heartbeat are refused and write nothing,
// and the job runs once more and succeeds exactly once.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Completer, goneIsRefused } from '../src/engine/execute.js';
import { createLogger } from '../src/engine/log.js';
import { isRunGone } from '../src/errors.js';
import { ENGINE_SQL } from '../src/sql/engine.js';
import { waitFor } from './helpers.js';
import { type OwnServer, ownServer } from './support/server.js';

const WORKER = 'execute-00000000-0000-4000-8000-0000000000c1';

let srv: OwnServer;
let pool: pg.Pool;

beforeAll(async () => {
  srv = await ownServer('lostclaim');
  const url = await srv.createDb('canon');
  const admin = new pg.Client({ connectionString: srv.url() });
  await admin.connect();
  // nothing but this file's own statements may flush the WAL while the claim waits
  await admin.query(`alter system set autovacuum = off`);
  await admin.query(`select pg_reload_conf()`);
  await admin.end();
  pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => {}); // the crash ends every connection
  await pool.query(ENGINE_SQL.upsertJobType, ['noop', 3, 60, 1, 60, 5, 30, 'test']);
}, 120_000);

afterAll(async () => {
  await pool?.end().catch(() => {});
  await srv?.stop();
});

const pidOf = async (backendType: string) =>
  Number((await pool.query(`select pid from pg_stat_activity where backend_type = $1`, [backendType])).rows[0].pid);

/** Waits for the server to notice the crash (a query fails), then for its recovery. */
const backAfterRecovery = async () => {
  await waitFor(
    async () =>
      pool.query('select 1').then(
        () => false,
        () => true,
      ),
    { timeout: 30_000, interval: 50, what: 'the server to notice the crash' },
  );
  await waitFor(
    async () =>
      (await pool.query(`select 1 as ok from canon.jobs limit 1`).catch(() => ({ rows: [] }))).rows.length > 0,
    {
      timeout: 60_000,
      interval: 200,
      what: 'the server back after crash recovery',
    },
  );
};

async function claimOne(entity: string, client: pg.Pool | pg.PoolClient = pool): Promise<number> {
  await client.query(`select canon.enqueue_job('noop', $1)`, [entity]);
  const rows = (await client.query(ENGINE_SQL.claimRuns, ['execution', WORKER, 1])).rows;
  expect(rows).toHaveLength(1); // an earlier claim lost in a crash may leave an older job first
  return Number(rows[0].run_id);
}

describe('a claim lost in a crash', () => {
  it('never has its run id handed out again; the lost run is refused; the job succeeds once', async () => {
    // a few runs before, so the sequence has a durable history
    for (let i = 0; i < 3; i++) await pool.query(`select canon.enqueue_job('noop', $1)`, [`lc-before-${i}`]);
    const before = (await pool.query(ENGINE_SQL.claimRuns, ['execution', WORKER, 3])).rows;
    expect(before).toHaveLength(3);
    await pool.query(`select canon.enqueue_job('noop', 'lc-1')`);

    // a checkpoint first, so the claim's nextval must write a new sequence record to the WAL;
    // then every process that writes WAL or data pages in the background is frozen, so the
    // claim's records stay in the server's memory (a data page written out flushes the WAL
    // before it)
    await pool.query('checkpoint');
    const writers = await Promise.all(['walwriter', 'background writer', 'checkpointer'].map(pidOf));
    for (const pid of writers) process.kill(pid, 'SIGSTOP');
    let lost: { run_id: number; id: number };
    try {
      const rows = (await pool.query(ENGINE_SQL.claimRuns, ['execution', WORKER, 1])).rows;
      expect(rows).toHaveLength(1);
      lost = rows[0];
    } finally {
      // they die with the WAL unwritten: the server crashes and recovers from the disk
      for (const pid of writers) process.kill(pid, 'SIGKILL');
    }
    await backAfterRecovery();

    // the claim is gone: its job is queued again and its run never existed
    const job = (await pool.query(`select status, attempts from canon.jobs where id = $1`, [lost.id])).rows[0];
    expect(job, 'the claim survived the crash: the test did not lose it').toEqual({ status: 'queued', attempts: 0 });
    expect(
      (await pool.query(`select count(*)::int as n from canon.job_runs where id = $1`, [lost.run_id])).rows[0].n,
    ).toBe(0);

    // the job is claimed again, by the same worker: a new run id, far past the lost one
    const again = (await pool.query(ENGINE_SQL.claimRuns, ['execution', WORKER, 1])).rows;
    expect(again.map((r) => Number(r.id))).toEqual([Number(lost.id)]);
    expect(Number(again[0].run_id)).toBeGreaterThan(Number(lost.run_id) + 1_000_000);

    // the worker that held the lost run: its heartbeat and completion are refused, nothing written
    const events = async () =>
      (await pool.query(`select count(*)::int as n from canon.events where kind = 'noop.succeeded'`)).rows[0]
        .n as number;
    expect((await pool.query(ENGINE_SQL.heartbeat, [WORKER, [lost.run_id]])).rows).toEqual([]);
    // as the worker's Completer sends it: the batch names a run that does not exist, and the
    // run one by one is refused like a run taken away (its job is not this run's any more)
    const lostRun = {
      run_id: Number(lost.run_id),
      worker_id: WORKER,
      event_kind: 'noop.succeeded',
      result: '{"from":"lost"}',
    };
    await expect(
      pool.query(ENGINE_SQL.completeMany, [JSON.stringify([{ ...lostRun, result: { from: 'lost' } }])]),
    ).rejects.toThrow(/run \d+ does not exist/);
    const log = createLogger({ level: 'silent' });
    expect(await new Completer(pool, log).complete(lostRun)).toEqual({ ok: false, event_position: null });
    const failed = await goneIsRefused(
      pool.query(ENGINE_SQL.fail, [lost.run_id, WORKER, 'handler error after the crash', false, 'handler_error']),
    );
    expect(failed.rows[0].ok).toBe(false);
    // a decider holding a lost run: the worker recognises the error and counts the run fenced
    const decision = await pool.query(ENGINE_SQL.beginDecision, [lost.run_id, WORKER]).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isRunGone(decision)).toBe(true);
    expect(await events()).toBe(0);

    // the new run completes, once
    const done = (
      await pool.query(ENGINE_SQL.completeMany, [
        JSON.stringify([
          { run_id: again[0].run_id, worker_id: WORKER, event_kind: 'noop.succeeded', result: { from: 'again' } },
        ]),
      ])
    ).rows;
    expect(done.map((r) => r.ok)).toEqual([true]);
    expect(await events()).toBe(1);
    const runs = (
      await pool.query(`select status, count(*)::int as n from canon.job_runs where job_id = $1 group by status`, [
        lost.id,
      ])
    ).rows;
    expect(runs).toEqual([{ status: 'succeeded', n: 1 }]);
    expect((await pool.query(`select status from canon.jobs where id = $1`, [lost.id])).rows[0].status).toBe(
      'succeeded',
    );
  }, 120_000);

  it('moves the ids once per crash, whichever sessions claim first, and not on a clean restart', async () => {
    const a = await claimOne('lc-2');
    // a backend killed hard is a crash too: the server recovers without restarting
    const victim = await pool.connect();
    const pid = Number((await victim.query('select pg_backend_pid() as pid')).rows[0].pid);
    victim.on('error', () => {});
    process.kill(pid, 'SIGKILL');
    victim.release(true);
    await backAfterRecovery();
    // two sessions claim at once after the crash: one moves the ids, the other waits and sees it
    const [c1, c2] = await Promise.all([pool.connect(), pool.connect()]);
    try {
      const [b1, b2] = await Promise.all([claimOne('lc-3', c1), claimOne('lc-4', c2)]);
      expect(Math.min(b1, b2)).toBeGreaterThan(a + 10_000_000);
      expect(Math.abs(b1 - b2)).toBeLessThan(1000);
    } finally {
      c1.release();
      c2.release();
    }
    const b = Number((await pool.query(`select max(id) as m from canon.job_runs`)).rows[0].m);
    await srv.cleanRestart();
    const c = await claimOne('lc-5');
    expect(c).toBeGreaterThan(b);
    expect(c - b).toBeLessThan(1000); // the sequence's own prefetch (32), no jump
  }, 120_000);
});
