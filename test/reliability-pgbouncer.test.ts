// canon through Debian's PgBouncer in transaction pooling mode, started by this file in front
// of a Postgres of its own: `canon demo` (migrations included), workers, tick, status, trace,
// jobs and the audit all work through it. Consecutive transactions of one client land on
// different server connections there, so named prepared statements, session settings,
// session advisory locks and LISTEN do not carry over: canon notices the pooler (it refuses
// the session timeouts canon asks for at connect), goes without them, and LISTENs on
// CANON_LISTEN_URL when one is given (else polls, and says so once).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canon, oneLineError } from './helpers.js';
import {
  anchored,
  docs,
  type FaultRig,
  fastEnv,
  logLines,
  quickDecisions,
  settle,
  startWorkers,
  stopAndCheck,
} from './support/fault-run.js';
import { type Bouncer, startPgBouncer } from './support/pgbouncer.js';
import { type OwnServer, ownServer } from './support/server.js';

let srv: OwnServer;
let direct: string;
let bouncer: Bouncer;
let rig: FaultRig;

beforeAll(async () => {
  srv = await ownServer('pgbouncer');
  // an empty database: `canon demo` migrates it through PgBouncer
  const admin = new pg.Client({ connectionString: srv.url() });
  await admin.connect();
  await admin.query('create database canon');
  await admin.end();
  direct = srv.url('canon');
  bouncer = await startPgBouncer(direct);
  const pool = new pg.Pool({ connectionString: direct, max: 4 });
  pool.on('error', () => {});
  rig = { pool, url: bouncer.url, env: fastEnv('pgbouncer') };
}, 120_000);

afterAll(async () => {
  await rig?.pool.end().catch(() => {});
  await bouncer?.stop();
  await srv?.stop();
});

describe('PgBouncer in transaction mode', () => {
  it('canon demo migrates and runs through it; two migrators at once serialise on the lock', async () => {
    const demo = await canon(['demo', '--documents', '20', '--flaky-rate', '0', '--json'], {
      url: bouncer.url,
      env: rig.env,
      timeout: 180_000,
    });
    expect(demo.exitCode, demo.stderr).toBe(0);
    expect(JSON.parse(demo.stdout)).toMatchObject({ documents: 20, anchored: 20 });
    expect(demo.stderr).not.toMatch(/prepared statement|already exists|\n\s+at /);
    const twice = await Promise.all([1, 2].map(() => canon(['migrate', '--json'], { url: bouncer.url })));
    for (const m of twice) expect(m.exitCode, m.stderr).toBe(0);
    // nothing of the advisory lock is left behind on PgBouncer's server connections
    const locks = await rig.pool.query(`select count(*)::int as n from pg_locks where locktype = 'advisory'`);
    expect(locks.rows[0].n).toBe(0);
  }, 240_000);

  it('workers, tick and the audit work through it: nothing lost or doubled; LISTEN on CANON_LISTEN_URL, else polling with one note', async () => {
    await quickDecisions(rig.pool);
    const N = 60;
    await docs(rig, 'pooled', N);
    const args = ['--log-level', 'info'];
    const ws = [
      ...startWorkers(rig, 1, bouncer.url, { args }),
      ...startWorkers(rig, 1, bouncer.url, { args, env: { CANON_LISTEN_URL: direct } }),
    ];
    await settle(rig, 'pooled', N);
    // the second worker holds LISTEN on its direct connection
    const listening = await rig.pool.query(
      `select count(*)::int as n from pg_stat_activity where application_name like 'canon-listen %' and query = 'listen canon_jobs'`,
    );
    expect(listening.rows[0].n).toBe(1);
    const w = await stopAndCheck(rig, 'through pgbouncer (transaction mode)', 'pooled', N, ws, { workers: 2 });
    const [polling, withListen] = await Promise.all(ws);
    expect(logLines(String(polling.stderr), /LISTEN is not available through a transaction pooler/)).toHaveLength(1);
    expect(String(withListen.stderr)).not.toMatch(/LISTEN is not available/);
    expect(w.stderr).not.toMatch(/prepared statement|database call failed/);
  }, 240_000);

  it('status, trace, jobs, watch and health read through it', async () => {
    const entity = 'pooled-0';
    expect(await anchored(rig, 'pooled')).toBeGreaterThan(0);
    const status = await canon(['status', entity, '--json'], { url: bouncer.url });
    expect(status.exitCode, status.stderr).toBe(0);
    const trace = await canon(['trace', entity, '--json'], { url: bouncer.url });
    expect(trace.exitCode, trace.stderr).toBe(0);
    expect(trace.stdout).toContain('anchor.succeeded');
    const jobs = await canon(['jobs', '--json'], { url: bouncer.url });
    expect(jobs.exitCode, jobs.stderr).toBe(0);
    const verify = await canon(['status', 'verify', '--json'], { url: bouncer.url });
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);
    // the dashboard's snapshot is a prepared statement on a direct connection: unnamed here
    const watch = await canon(['watch', '--once', '--json'], { url: bouncer.url });
    expect(watch.exitCode, watch.stderr).toBe(0);
    expect(JSON.parse(watch.stdout)).toHaveProperty('health');
    const health = await canon(['health', '--json'], { url: bouncer.url });
    expect(health.exitCode, health.stderr).toBeLessThan(2); // OK or WARNING, not CRITICAL or UNKNOWN
  }, 120_000);

  it('CANON_POOLER=none (a pooler declared absent) fails with one line naming the fix', async () => {
    const r = await canon(['status', 'pooled-0', '--json'], { url: bouncer.url, env: { CANON_POOLER: 'none' } });
    expect(r.exitCode).toBe(3);
    expect(oneLineError(r)).toMatch(/refuses canon's session timeouts .*set CANON_POOLER=transaction/);
  });
});
