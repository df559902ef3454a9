// Connections fit for production, proved with real `canon work` processes on a Postgres of
// this file's own: started while Postgres is down (it waits, one line, then works; with
// --fail-fast it exits 3); connections that stop answering mid-claim, mid-completion and
// mid-decision (a TCP proxy that swallows them) abandoned within the reply timeout; a lock
// held past the lock timeout (any database error is one line and a retry, never a dead
// worker); every connection slot taken (max_connections). After each: nothing lost, nothing
// doubled, no half-written job or event, the audit clean, one log line per fault.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientConfig, createPool } from '../src/db/connect.js';
import { connectionSettings } from '../src/db/settings.js';
import { canon, oneLineError, waitFor } from './helpers.js';
import {
  anchored,
  docs,
  FAST,
  type FaultRig,
  fastEnv,
  logLines,
  quickDecisions,
  settle,
  startWorkers,
  stopAndCheck,
} from './support/fault-run.js';
import { type OwnServer, ownServer } from './support/server.js';
import { FaultProxy } from './support/tcp-proxy.js';

let srv: OwnServer;
let url: string;
let rig: FaultRig;

const openPool = () => {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => {});
  return pool;
};

beforeAll(async () => {
  srv = await ownServer('connections');
  url = await srv.createDb('canon');
  rig = { pool: openPool(), url, env: fastEnv('connections') };
  await quickDecisions(rig.pool);
}, 120_000);

afterAll(async () => {
  await rig?.pool.end().catch(() => {});
  await srv?.stop();
});

/** Collects a worker's stderr as it is written (the process is still running). */
function stderrOf(w: ReturnType<typeof startWorkers>[number]): () => string {
  let text = '';
  w.stderr?.on('data', (d) => (text += String(d)));
  return () => text;
}

describe('the timeouts on every connection canon opens', () => {
  it('statement, lock and idle-in-transaction timeouts are set on the session, with keepalives; CANON_* variables change them', async () => {
    const settings = { statement_timeout: '7s', lock_timeout: '1500ms', idle_in_transaction_session_timeout: '2min' };
    const env = {
      CANON_STATEMENT_TIMEOUT: settings.statement_timeout,
      CANON_LOCK_TIMEOUT: settings.lock_timeout,
      CANON_IDLE_IN_TRANSACTION_TIMEOUT: settings.idle_in_transaction_session_timeout,
    };
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      const pool = createPool(url, { max: 1, applicationName: 'canon test' });
      const shown = (
        await pool.query(`select current_setting('statement_timeout') as statement_timeout,
        current_setting('lock_timeout') as lock_timeout,
        current_setting('idle_in_transaction_session_timeout') as idle_in_transaction_session_timeout`)
      ).rows[0];
      await pool.end();
      expect(shown).toEqual(settings);
      const cfg = clientConfig(url, 'canon test');
      expect(cfg).toMatchObject({ keepAlive: true, query_timeout: 7000 + 15_000 });
    } finally {
      process.env = saved;
    }
    // the defaults, as docs/OPERATIONS.md lists them
    expect(connectionSettings({})).toMatchObject({
      statementTimeoutMs: 60_000,
      lockTimeoutMs: 10_000,
      idleInTransactionTimeoutMs: 60_000,
      queryTimeoutMs: 75_000,
      keepAliveMs: 10_000,
    });
    // a value that is not a duration: one line naming the variable, exit 2
    const bad = await canon(['status', 'some-entity'], { url, env: { CANON_LOCK_TIMEOUT: 'soon' } });
    expect(bad.exitCode).toBe(2);
    expect(oneLineError(bad)).toMatch(/CANON_LOCK_TIMEOUT="soon" is not a duration/);
  });
});

describe('canon work started while Postgres is down', () => {
  it('with --fail-fast exits 3 with one line; without, waits (one line per kind of failure), then works: nothing lost or doubled', async () => {
    const N = 30;
    await docs(rig, 'down', N);
    await rig.pool.end();
    await srv.crash();
    try {
      const fast = await canon(['work', '--fail-fast', '--pipeline', FAST], { url, env: rig.env });
      expect(fast.exitCode).toBe(3);
      expect(oneLineError(fast)).toMatch(/cannot connect to Postgres at .*connection refused/);
      expect(fast.stderr).not.toContain(srv.cfg.password);

      const ws = startWorkers(rig, 1, url, { args: ['--log-level', 'info'] });
      const seen = stderrOf(ws[0]);
      await waitFor(async () => /waiting for the database/.test(seen()), { what: 'the waiting line' });
      // long enough for several retries: the line is not repeated for them
      await new Promise((r) => setTimeout(r, 3000));
      expect(ws[0].exitCode ?? null).toBeNull();
      await srv.restart();
      rig.pool = openPool();
      await settle(rig, 'down', N);
      const w = await stopAndCheck(rig, 'started while postgres is down', 'down', N, ws, { faults: 1 });
      const waiting = logLines(w.stderr, /^waiting for the database/);
      expect(waiting.filter((l) => /connection refused/.test(String(l.msg)))).toHaveLength(1);
      // at most one more kind: the server starting up
      expect(waiting.length).toBeLessThanOrEqual(2);
      const answered = logLines(w.stderr, /^database answers: starting/);
      expect(answered).toHaveLength(1);
      expect(Number(answered[0].attempts)).toBeGreaterThan(waiting.length + 2);
      expect(w.stderr).not.toContain(srv.cfg.password);
    } finally {
      if (rig.pool.ended) rig.pool = openPool();
    }
  }, 180_000);
});

describe('connections that stop answering (a proxy swallows them) mid-claim, mid-completion and mid-decision', () => {
  it('are abandoned within the reply timeout; the worker reconnects; nothing is lost or doubled', async () => {
    const proxy = new FaultProxy({ host: '127.0.0.1', port: srv.cfg.port });
    const port = await proxy.listen();
    const proxied = new URL(url);
    proxied.port = String(port);
    const ws = startWorkers(rig, 1, proxied.toString(), {
      env: {
        CANON_STATEMENT_TIMEOUT: '2s',
        CANON_QUERY_TIMEOUT: '3s',
        CANON_IDLE_IN_TRANSACTION_TIMEOUT: '2s',
      },
    });
    const traps = {
      // the statement reaches the server and commits there; its answer never comes back
      claim: proxy.blackHole(/claim_runs/),
      completion: proxy.blackHole(/complete_runs?\b/),
      // inside the decision's transaction: the server waits for a commit that never comes
      decision: proxy.blackHole(/finish_decisions/),
    };
    const sprung = () => Object.values(traps).filter((t) => t.length > 0).length;
    // documents arrive in waves until every trap has caught a connection; each wave is
    // settled (tick rescues the runs whose claim answer was swallowed) before the next
    let n = 0;
    try {
      for (let wave = 0; sprung() < 3 && wave < 20; wave++) {
        await docs(rig, 'stall', 10, n);
        n += 10;
        await settle(rig, 'stall', n);
        if (ws[0].exitCode !== null && ws[0].exitCode !== undefined) break;
      }
      expect(Object.fromEntries(Object.entries(traps).map(([k, t]) => [k, t.length]))).toEqual({
        claim: 1,
        completion: 1,
        decision: 1,
      });
    } finally {
      await proxy.close();
    }
    const w = await stopAndCheck(rig, 'connections swallowed mid-statement', 'stall', n, ws, {
      faults: 3,
      connections: proxy.stats.connections,
    });
    // one line per fault, not one per retry
    const lines = logLines(w.stderr, /^database call failed/);
    const noReply = lines.filter((l) => /no reply within CANON_QUERY_TIMEOUT/.test(String(l.msg)));
    expect(noReply.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(3 * 2); // each swallowed statement, and the timeout it caused server-side
  }, 300_000);
});

describe('a database error in the claim loop, the heartbeat and the completions (a lock held past the lock timeout)', () => {
  it('is one log line and a retry with backoff; the worker lives on and nothing is lost or doubled', async () => {
    const N = 40;
    await docs(rig, 'locked', N);
    const ws = startWorkers(rig, 1, url, { env: { CANON_LOCK_TIMEOUT: '300ms' }, args: ['--log-level', 'info'] });
    await waitFor(async () => (await anchored(rig, 'locked')) >= 5, { timeout: 60_000, what: 'work under way' });
    await docs(rig, 'locked', N, N);
    const locker = await rig.pool.connect();
    const held = { from: '', to: '' };
    try {
      await locker.query('begin');
      held.from = new Date().toISOString();
      await locker.query('lock table canon.job_runs in access exclusive mode');
      await new Promise((r) => setTimeout(r, 3000));
      await locker.query('commit');
      held.to = new Date().toISOString();
    } finally {
      locker.release();
    }
    await settle(rig, 'locked', 2 * N);
    const w = await stopAndCheck(rig, 'lock held past the lock timeout', 'locked', 2 * N, ws, { faults: 1 });
    // while the table was held: one line however many calls failed (later, with a 300 ms lock
    // timeout, a heartbeat meeting a completion's row locks is a fault of its own)
    const during = (l: Record<string, unknown>) => String(l.time) >= held.from && String(l.time) <= held.to;
    const lines = logLines(w.stderr, /^database call/);
    const failed = lines.filter((l) => /^database call failed/.test(String(l.msg)) && during(l));
    expect(
      failed.map((l) => l.msg),
      lines.map((l) => JSON.stringify(l)).join('\n'),
    ).toEqual(['database call failed, retrying with backoff: lock timeout']);
    const recovered = lines.filter(
      (l) => /^database calls succeed again/.test(String(l.msg)) && String(l.time) >= held.from,
    );
    expect(recovered.length).toBeGreaterThanOrEqual(1);
    // many calls failed, one line said so
    expect(Number(recovered[0].failed_calls), lines.map((l) => JSON.stringify(l)).join('\n')).toBeGreaterThan(1);
  }, 180_000);
});

describe('every connection slot taken (max_connections)', () => {
  it('one clear line, backoff, and the worker starts when slots free up: nothing lost or doubled', async () => {
    const N = 30;
    await docs(rig, 'full', N);
    await rig.pool.query('alter system set max_connections = 20');
    await rig.pool.end();
    await srv.cleanRestart();
    const hogs: pg.Client[] = [];
    try {
      // every slot, the superuser's reserved ones too
      for (;;) {
        const c = new pg.Client({ connectionString: url });
        c.on('error', () => {});
        try {
          await c.connect();
          hogs.push(c);
        } catch (e) {
          expect((e as { code?: string }).code).toBe('53300');
          break;
        }
      }
      const ws = startWorkers(rig, 1, url, { args: ['--log-level', 'info'] });
      const seen = stderrOf(ws[0]);
      await waitFor(async () => /no free connection slot/.test(seen()), { what: 'the max_connections line' });
      await new Promise((r) => setTimeout(r, 2000));
      expect(ws[0].exitCode ?? null).toBeNull();
      await Promise.all(hogs.splice(0).map((c) => c.end().catch(() => {})));
      rig.pool = openPool();
      await settle(rig, 'full', N);
      const w = await stopAndCheck(rig, 'max_connections exhausted', 'full', N, ws, { faults: 1 });
      expect(w.stderr.split('\n').filter((l) => /no free connection slot/.test(l))).toHaveLength(1);
      expect(logLines(w.stderr, /^database answers: starting/)).toHaveLength(1);
    } finally {
      await Promise.all(hogs.map((c) => c.end().catch(() => {})));
      if (rig.pool.ended) rig.pool = openPool();
      await rig.pool.query('alter system reset max_connections');
    }
  }, 180_000);
});
