// The dashboard's snapshot and actions on a real Postgres with real runs of the example
// pipeline: the health part is `canon health`'s numbers, the trace part is `canon trace`'s
// chain, the sparklines count the runs, the plan touches no table with a sequential scan,
// every action lands through the library that owns it (recorded with who and why), and a
// database lost behind a TCP proxy shows "disconnected, retrying" and recovers.
import net from 'node:net';
import { stripVTControlCharacters as strip } from 'node:util';
import { render } from 'ink-testing-library';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeHealth } from '../src/observe/health.js';
import { DEFAULT_THRESHOLDS } from '../src/observe/thresholds.js';
import { loadChain } from '../src/observe/trace.js';
import { WATCH_SQL } from '../src/sql/watch.js';
import { App } from '../src/tui/App.js';
import { readSnapshot } from '../src/tui/snapshot.js';
import { dbSource } from '../src/tui/source.js';
import { canon, createTestDb, spawnCanon, type TestDb, waitFor } from './helpers.js';
import { doc, env, FAST } from './seeing-common.js';
import { plain } from './watch-fixtures.js';

let db: TestDb;
const who = { actor: 'oncall-ann', reason: 'INC-7 drill' };
const params = (type: string | null = null, entity: string | null = null) => [3600, 60, 60, 86400, 3600, type, entity];

beforeAll(async () => {
  db = await createTestDb('watch-db');
  await doc(db, 'ok-1');
  await doc(db, 'ok-2');
  await doc(db, 'poison-1', 'bad #poison');
  await doc(db, 'poison-2', 'bad #poison');
  await work(`select 1 where not exists (select 1 from canon.jobs where status in ('queued', 'running'))`);
  // a type paused with a job waiting in it
  expect(
    (await canon(['jobs', 'pause', 'anchor', '--actor', 'bob', '--reason', 'TSA outage'], { url: db.url })).exitCode,
  ).toBe(0);
  await doc(db, 'waiting-1');
  await work(`select 1 from canon.jobs where entity_id = 'waiting-1' and type = 'anchor' and status = 'queued'
               and not exists (select 1 from canon.jobs where status = 'running' or (status = 'queued' and type <> 'anchor'))`);
}, 120_000);
afterAll(async () => db.end());

/** A real worker of the fast example pipeline, stopped once the query returns a row. */
async function work(until: string) {
  const w = spawnCanon(['work', '--pipeline', FAST, '--log-level', 'error'], {
    url: db.url,
    env: env({ FAST_ATTEMPTS: '2' }),
  });
  try {
    await waitFor(async () => (await db.pool.query(until)).rowCount! > 0, { what: until });
  } catch (e) {
    console.log(
      (
        await db.pool.query(
          `select id, type, entity_id, status, run_at > now() as later from canon.jobs where status not in ('succeeded') order by id`,
        )
      ).rows,
    );
    throw e;
  } finally {
    w.kill('SIGTERM');
  }
  const done = await w;
  expect(done.exitCode, String(done.stderr)).toBe(0);
}

describe('snapshot', () => {
  it('carries exactly the numbers of canon health, and the per-type rows add up to them', async () => {
    const s = await readSnapshot(db.pool, DEFAULT_THRESHOLDS, {}, 'test');
    const h = await computeHealth(db.pool, DEFAULT_THRESHOLDS);
    const stable = (x: typeof h) => ({ ...x, checked_at: 0, estimated_lag_seconds: 0, oldest_queued_age_seconds: 0 });
    expect(stable(s.health)).toEqual(stable(h));
    expect(s.health.dead_last_24h).toBe(2);
    expect(s.health.jobs_queued.total).toBeGreaterThanOrEqual(1);
    const sum = (k: 'queued' | 'running' | 'dead_24h') => s.types.reduce((n, t) => n + t[k], 0);
    expect(sum('queued')).toBe(h.jobs_queued.total);
    expect(sum('running')).toBe(h.jobs_processing.count);
    expect(sum('dead_24h')).toBe(h.dead_last_24h);
    expect(s.types.find((t) => t.name === 'anchor')).toMatchObject({
      paused: true,
      paused_by: 'bob',
      pause_reason: 'TSA outage',
      queued: 1,
    });
    expect(s.types.find((t) => t.name === 'protect')).toMatchObject({ dead_24h: 2 });
  });

  it('buckets the last 30 minutes of finished runs, and shows the newest failures with their trace ids', async () => {
    const s = await readSnapshot(db.pool, DEFAULT_THRESHOLDS, {}, 'test');
    expect(s.minutes).toHaveLength(30);
    const runs = (
      await db.pool.query(
        `select count(*) filter (where status = 'succeeded')::int as ok, count(*) filter (where status = 'failed')::int as failed from canon.job_runs`,
      )
    ).rows[0];
    expect(s.minutes.reduce((n, m) => n + m.ok, 0)).toBe(runs.ok);
    expect(s.minutes.reduce((n, m) => n + m.failed, 0)).toBe(runs.failed);
    expect(s.minutes.every((m) => m.lag >= 0)).toBe(true);
    expect(s.failures.length).toBe(4); // two attempts of each poison job
    expect(
      s.failures.every(
        (f) =>
          f.dead &&
          f.type === 'protect' &&
          /poison document/.test(f.error ?? '') &&
          f.trace_id.endsWith(`-${f.job_id}-${f.attempt}`),
      ),
    ).toBe(true);
    expect(s.flags.map((f) => f.name)).toContain('D1_RUN_TSA_ENABLED');
  });

  it('drills into a type (jobs by state) and an entity (the same chain canon trace loads)', async () => {
    const s = await readSnapshot(db.pool, DEFAULT_THRESHOLDS, { type: 'protect', entity: 'poison-1' }, 'test');
    expect(s.focus_type).toMatchObject({ type: 'protect', known: true, dead: { n: 2, last_24h: 2 }, queued: { n: 0 } });
    expect(s.focus_type!.jobs.map((j) => [j.state, j.entity_id]).sort()).toEqual([
      ['dead', 'poison-1'],
      ['dead', 'poison-2'],
    ]);
    const chain = await loadChain(db.pool, 'poison-1', 'entity');
    expect(s.focus_entity!.chain).toEqual(chain);
    expect(s.focus_entity!.trace!.counts).toMatchObject({ dead_jobs: 1 });
    const anchor = await readSnapshot(db.pool, DEFAULT_THRESHOLDS, { type: 'anchor' }, 'test');
    expect(anchor.focus_type!.queued).toEqual({ n: 1, ready: 1, held: 0 });
    expect(anchor.focus_type!.jobs).toMatchObject([{ state: 'queued', entity_id: 'waiting-1' }]);
    const none = await readSnapshot(db.pool, DEFAULT_THRESHOLDS, { type: 'nope', entity: 'ghost' }, 'test');
    expect(none.focus_type!.known).toBe(false);
    expect(none.focus_entity).toMatchObject({ exists: false, trace: null });
  });

  it('is one statement whose plan reads events, jobs, job_runs and workers only through indexes', async () => {
    const c = await db.pool.connect();
    try {
      // with sequential scans priced out, a Seq Scan left in the plan means no index can answer
      await c.query('begin');
      await c.query('set local enable_seqscan = off');
      await c.query('analyze');
      for (const p of [params(), params('protect', 'poison-1')]) {
        const plan = JSON.stringify(
          (await c.query(`explain (format json) ${WATCH_SQL.snapshot}`, p)).rows[0]['QUERY PLAN'],
        );
        const seq = [...plan.matchAll(/"Node Type":"Seq Scan"[^}]*?"Relation Name":"(\w+)"/g)].map((m) => m[1]);
        expect(
          seq.filter((t) => ['events', 'jobs', 'job_runs', 'workers', 'job_actions'].includes(t)),
          plan,
        ).toEqual([]);
      }
    } finally {
      await c.query('rollback');
      c.release();
    }
  });
});

describe('actions through the owning libraries', () => {
  it('retry of a dead job: a new job through the gateway, recorded with actor and reason', async () => {
    const src = dbSource(db.pool, DEFAULT_THRESHOLDS, 'test', who);
    const dead = (await db.pool.query(`select id from canon.jobs where entity_id = 'poison-1' and status = 'failed'`))
      .rows[0].id;
    const p = await src.prepare({
      kind: 'retry',
      job: { id: dead, type: 'protect', entity_id: 'poison-1', status: 'failed', dead: true },
    });
    expect(p.prompt).toBe(`retry job #${dead} (protect, dead, entity poison-1)?`);
    const msg = await p.run();
    const a = (await db.pool.query(`select * from canon.job_actions where job_id = $1`, [dead])).rows[0];
    expect(a).toMatchObject({ action: 'retry', actor: 'oncall-ann', reason: 'INC-7 drill' });
    expect(msg).toBe(`job #${dead} retried as job #${a.new_job_id} by oncall-ann`);
    expect(
      (await db.pool.query(`select status, via_gateway from canon.jobs where id = $1`, [a.new_job_id])).rows[0],
    ).toEqual({ status: 'queued', via_gateway: true });
  });

  it('retry all dead jobs of a type shows the exact count, then retries exactly those', async () => {
    const src = dbSource(db.pool, DEFAULT_THRESHOLDS, 'test', who);
    const p = await src.prepare({ kind: 'retry-type', type: 'protect' });
    expect(p.prompt).toBe('retry 1 dead protect job?'); // poison-1's was retried above
    expect(await p.run()).toBe('retried 1 protect job');
    await expect(src.prepare({ kind: 'retry-type', type: 'protect' })).rejects.toThrow(
      'no dead protect jobs: nothing to retry',
    );
  });

  it('pause and resume a type, kill a flag, cancel a queued job: each recorded', async () => {
    const src = dbSource(db.pool, DEFAULT_THRESHOLDS, 'test', who);
    expect(await (await src.prepare({ kind: 'pause', type: 'anchor', pause: false })).run()).toBe(
      'anchor resumed by oncall-ann (1 queued job)',
    );
    expect(await (await src.prepare({ kind: 'pause', type: 'tsa', pause: true })).run()).toBe(
      'tsa paused by oncall-ann (0 queued jobs)',
    );
    const log = (
      await db.pool.query(
        `select target, action, actor, reason from canon.steering_log where actor = 'oncall-ann' order by id`,
      )
    ).rows;
    expect(log).toEqual([
      { target: 'anchor', action: 'resume', actor: 'oncall-ann', reason: 'INC-7 drill' },
      { target: 'tsa', action: 'pause', actor: 'oncall-ann', reason: 'INC-7 drill' },
    ]);
    const kill = await src.prepare({ kind: 'kill', flag: 'D1_RUN_TSA_ENABLED' });
    expect(kill.prompt).toMatch(/^kill flag D1_RUN_TSA_ENABLED\? it turns off and holds \d+ queued jobs? it allowed$/);
    expect(await kill.run()).toMatch(/^D1_RUN_TSA_ENABLED killed by oncall-ann/);
    expect(
      (
        await db.pool.query(
          `select actor, reason, after from canon.flag_changes where flag_name = 'D1_RUN_TSA_ENABLED' order by id desc limit 1`,
        )
      ).rows[0],
    ).toMatchObject({ actor: 'oncall-ann', reason: 'INC-7 drill', after: { killed: true } });
    const queued = (
      await db.pool.query(`select id, type, entity_id from canon.jobs where status = 'queued' order by id limit 1`)
    ).rows[0];
    expect(await (await src.prepare({ kind: 'cancel', job: { ...queued, status: 'queued', dead: false } })).run()).toBe(
      `job #${queued.id} (queued) cancelled by oncall-ann`,
    );
    expect(
      (await db.pool.query(`select action, actor from canon.job_actions where job_id = $1`, [queued.id])).rows,
    ).toEqual([{ action: 'cancel', actor: 'oncall-ann' }]);
  });
});

/** A TCP hop between the dashboard and Postgres that can be cut and restored. */
async function proxy(target: URL) {
  const sockets = new Set<net.Socket>();
  const serve = () =>
    net.createServer((client) => {
      const up = net.connect(Number(target.port), target.hostname);
      for (const s of [client, up]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(up).pipe(client);
    });
  let server = serve();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    cut: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
    restore: async () => {
      server = serve();
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('a lost database', () => {
  it('shows "disconnected, retrying", keeps the last numbers on screen, and recovers when it is back', async () => {
    const u = new URL(db.url);
    const px = await proxy(u);
    const via = new URL(db.url);
    via.port = String(px.port);
    const pool = new pg.Pool({ connectionString: via.toString(), max: 2, connectionTimeoutMillis: 2000 });
    pool.on('error', () => {});
    const r = render(
      <App
        source={dbSource(pool, DEFAULT_THRESHOLDS, 'test', who)}
        interval={0.2}
        readonly
        c={plain}
        size={{ cols: 100, rows: 30 }}
      />,
    );
    const frame = () => strip(r.lastFrame() ?? '');
    try {
      await waitFor(async () => frame().includes('JOB TYPE'), { what: 'the first snapshot', timeout: 10_000 });
      await px.cut();
      await waitFor(async () => frame().includes('disconnected, retrying'), {
        what: 'the outage on screen',
        timeout: 10_000,
      });
      expect(frame()).toContain('JOB TYPE');
      await px.restore();
      await waitFor(async () => !frame().includes('disconnected'), { what: 'recovery', timeout: 15_000 });
      expect(frame()).toMatch(/canon watch ● (OK|WARNING|CRITICAL)/);
    } finally {
      r.unmount();
      await px.close().catch(() => {});
      await pool.end().catch(() => {});
    }
  });
});
