// Graceful shutdown under heavy work, with real worker processes: SIGTERM with a short grace
// releases what is in flight, with a long grace lets it finish; either way the worker exits 0,
// marks itself stopped and leaves no job running in its name. A second SIGTERM exits at once;
// what it leaves running is rescued by `canon tick` after the TTL. Afterwards every document
// is anchored exactly once.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvent } from '../src/ledger.js';
import { canon, createTestDb, root, spawnCanon, type TestDb, waitFor } from './helpers.js';
import { checkInvariants, outcomes } from './support/invariants.js';
import { hasStackTrace, report, soak } from './support/report.js';

const FAST = path.join(root, 'test/fixtures/fast-pipeline.mjs');
const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-tsa-shutdown-'));
const env = { CANON_TSA_KEY_DIR: keyDir, FAST_TTL: '2', FAST_ATTEMPTS: '10', SLOW_PROTECT_MS: '300' };

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('shutdown');
  await db.pool.query(
    `update canon.job_types set timeout_seconds = 2, backoff_base_seconds = 0.1, backoff_max_seconds = 0.5 where name = 'decide'`,
  );
});
afterAll(async () => db.end());

async function docs(prefix: string, n: number) {
  for (let i = 0; i < n; i++)
    await appendEvent(db.pool, {
      entityId: `${prefix}-${i}`,
      kind: 'document.created',
      payload: { content: `${prefix} ${i}` },
    });
}
const anchored = async (prefix: string) =>
  (
    await db.pool.query(
      `select count(*)::int as n from canon.events where kind = 'anchor.succeeded' and entity_id like $1 || '-%'`,
      [prefix],
    )
  ).rows[0].n as number;
const start = (grace: string) =>
  spawnCanon(
    ['work', '--pipeline', FAST, '--concurrency', '8', '--grace', grace, '--log', 'json', '--log-level', 'info'],
    { url: db.url, env },
  );
const workerIdOf = async (pid: number) =>
  waitFor(
    async () =>
      (
        await db.pool.query(
          `select id from canon.workers where pid = $1 and stopped_at is null order by started_at desc limit 1`,
          [pid],
        )
      ).rows[0]?.id as string | undefined,
    { what: `worker ${pid} registered` },
  );
const runningOf = async (ids: string[]) =>
  (
    await db.pool.query(`select count(*)::int as n from canon.jobs where status = 'running' and locked_by = any($1)`, [
      ids,
    ])
  ).rows[0].n as number;
const protectsOf = async (id: string) =>
  (
    await db.pool.query(
      `select count(*)::int as n from canon.jobs where status = 'running' and type = 'protect' and locked_by = $1`,
      [id],
    )
  ).rows[0].n as number;
const pastTtl = async () =>
  (
    await db.pool.query(
      `select count(*)::int as n from canon.jobs j join canon.job_types t on t.name = j.type where j.status = 'running' and j.heartbeat_at < now() - make_interval(secs => t.timeout_seconds)`,
    )
  ).rows[0].n as number;

async function finish(prefix: string, n: number) {
  const w = start('10');
  await waitFor(
    async () => {
      await canon(['tick', '--max-jobs', '0', '--pipeline', FAST], { url: db.url, env });
      return (await anchored(prefix)) === n;
    },
    { timeout: 120_000, interval: 500, what: `all ${prefix} anchored` },
  );
  w.kill('SIGTERM');
  await w;
}

describe('graceful shutdown', () => {
  it("SIGTERM during heavy work: short grace releases, long grace finishes; nothing lost, nothing left running in a stopped worker's name", async () => {
    const N = soak(150);
    await docs('sd', N);
    const short = start('0');
    const long = start('30');
    const ids = [await workerIdOf(short.pid!), await workerIdOf(long.pid!)];
    // slow protect runs (300 ms each) in flight in the short-grace worker, so the signal finds
    // handlers to abort; a wait on overall progress alone could catch it between fast jobs only
    await waitFor(async () => (await protectsOf(ids[0])) >= 3 && (await runningOf(ids)) >= 4, {
      timeout: 60_000,
      what: 'heavy work in flight',
    });
    const inFlight = await runningOf(ids);
    short.kill('SIGTERM');
    long.kill('SIGTERM');
    const [a, b] = await Promise.all([short, long]);
    const logs = String(a.stderr) + String(b.stderr);
    expect(
      [a.exitCode, b.exitCode],
      String(a.stderr)
        .split('\n')
        .filter((l) => /"level":"(warn|error)"/.test(l))
        .slice(0, 10)
        .join('\n'),
    ).toEqual([0, 0]);
    expect(hasStackTrace(logs)).toBe(false);
    expect(logs).toMatch(/SIGTERM received/);
    // nothing is left running in the name of a worker that has stopped, and both say they stopped
    expect(await runningOf(ids)).toBe(0);
    const stopped = (
      await db.pool.query(
        `select count(*)::int as n from canon.workers where id = any($1) and stopped_at is not null`,
        [ids],
      )
    ).rows[0].n;
    expect(stopped).toBe(2);
    const released = (
      await db.pool.query(
        `select count(*)::int as n from canon.job_runs where worker_id = $1 and status = 'cancelled' and reason = 'released'`,
        [ids[0]],
      )
    ).rows[0].n;
    const releasedLong = (
      await db.pool.query(
        `select count(*)::int as n from canon.job_runs where worker_id = $1 and reason = 'released'`,
        [ids[1]],
      )
    ).rows[0].n;
    expect(releasedLong).toBe(0); // the long grace let its jobs finish
    expect(released).toBeGreaterThan(0); // no grace: in-flight handlers were aborted and their jobs handed back
    await finish('sd', N);
    const inv = await checkInvariants(db.pool);
    const out = await outcomes(db.pool, 'sd-');
    report('SIGTERM graceful', {
      runs: N,
      faults: 2,
      in_flight_at_signal: inFlight,
      released,
      lost: N - out.done,
      doubled: out.doubled,
      partial: Object.keys(inv.violations).length,
      stack_traces: 0,
    });
    expect(inv.violations).toEqual({});
    expect(out).toMatchObject({ done: N, failed: 0, open: [], doubled: 0 });
  }, 240_000);

  it('a second SIGTERM exits at once; the runs it abandoned are rescued after their TTL, and none stays running past it', async () => {
    const N = soak(60);
    await docs('sd2', N);
    const w = start('30');
    const id = await workerIdOf(w.pid!);
    // slow protect runs (300 ms each) in flight, so the second signal abandons some
    await waitFor(async () => (await protectsOf(id)) >= 3, { timeout: 60_000, what: 'protect jobs in flight' });
    w.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 20));
    w.kill('SIGTERM');
    const r = await w;
    expect(r.exitCode).toBe(130);
    expect(hasStackTrace(String(r.stderr))).toBe(false);
    const abandoned = await runningOf([id]);
    // cron's tick after the TTL (2 s) rescues them
    await waitFor(
      async () => {
        await canon(['tick', '--max-jobs', '0', '--pipeline', FAST], { url: db.url, env });
        return (await runningOf([id])) === 0;
      },
      { timeout: 30_000, interval: 1000, what: 'abandoned runs rescued' },
    );
    expect(await pastTtl()).toBe(0);
    await finish('sd2', N);
    const inv = await checkInvariants(db.pool);
    const out = await outcomes(db.pool, 'sd2-');
    report('second SIGTERM (abandon)', {
      runs: N,
      faults: 1,
      abandoned,
      lost: N - out.done,
      doubled: out.doubled,
      partial: Object.keys(inv.violations).length,
      stack_traces: 0,
    });
    expect(inv.violations).toEqual({});
    expect(out).toMatchObject({ done: N, failed: 0, open: [], doubled: 0 });
  }, 240_000);
});
