// Faults with real processes on a Postgres of this file's own (it is crashed and its backends
// killed, which must never happen to the shared test server): Postgres stopped hard and
// restarted mid-run; worker backends terminated while they claim and while they complete;
// a TCP proxy that drops and stalls the workers' connections. After each, with the workers
// left to recover on their own and `canon tick` rescuing as cron would, every document is
// anchored exactly once, no job or event is half-written, and the audit is clean.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers.js';
import {
  anchored,
  docs,
  type FaultRig,
  fastEnv,
  quickDecisions,
  settle,
  startWorkers,
  stopAndCheck,
} from './support/fault-run.js';
import { soak } from './support/report.js';
import { type OwnServer, ownServer } from './support/server.js';
import { FaultProxy, seeded } from './support/tcp-proxy.js';

let srv: OwnServer;
let url: string;
let pool: pg.Pool;
let rig: FaultRig;

beforeAll(async () => {
  srv = await ownServer('faults');
  url = await srv.createDb('canon');
  pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => {});
  rig = { pool, url, env: fastEnv('faults') };
  await quickDecisions(pool);
}, 120_000);

afterAll(async () => {
  await pool?.end().catch(() => {});
  await srv?.stop();
});

describe('Postgres stopped hard and restarted in the middle of a run', () => {
  it('workers reconnect with backoff; afterwards nothing is lost or doubled and the audit is clean', async () => {
    const N = soak(80);
    const crashes = soak(2);
    await docs(rig, 'crash', N);
    const ws = startWorkers(rig, 2, url);
    for (let k = 0; k < crashes; k++) {
      const target = Math.ceil((N * (k + 1)) / (crashes + 2));
      await waitFor(async () => (await anchored(rig, 'crash').catch(() => 0)) >= target, {
        timeout: 60_000,
        what: `${target} anchored before crash ${k + 1}`,
      });
      await srv.crash();
      await new Promise((r) => setTimeout(r, 500 + Math.random() * 1000));
      await srv.restart();
    }
    await settle(rig, 'crash', N);
    const w = await stopAndCheck(rig, 'postgres crash+restart', 'crash', N, ws, { faults: crashes });
    expect(w.reconnects).toBeGreaterThan(0); // they saw the outage and came back on their own
  }, 300_000);
});

describe('worker backends killed with pg_terminate_backend', () => {
  it('during claims and completions leaves no partial state: no result event without its succeeded job, or the reverse', async () => {
    const N = soak(150);
    await docs(rig, 'term', N);
    const ws = startWorkers(rig, 2, url);
    const kills: Record<string, number> = { claim: 0, complete: 0, fail: 0, decide: 0, other: 0 };
    const killer = new pg.Client({ connectionString: url });
    killer.on('error', () => {});
    await killer.connect();
    const random = seeded(Number(process.env.CANON_FAULT_SEED ?? 20260101));
    try {
      // a bounded number of kills, so the workers always make progress between them; past the
      // budget only while a claim or a completion has not been hit yet (twice the budget at most)
      const budget = soak(30);
      const spent = () => Object.values(kills).reduce((a, b) => a + b, 0);
      while (
        (await anchored(rig, 'term')) < N &&
        (spent() < budget || ((kills.claim === 0 || kills.complete === 0) && spent() < 2 * budget))
      ) {
        // Holding entity_status exclusively stops every claim, completion and decision at its
        // status trigger: after it wrote its rows, before it commits. Those backends are then
        // killed mid-transaction. Now and then a random worker backend is killed instead.
        await killer.query('begin');
        await killer.query('lock table canon.entity_status in exclusive mode');
        await killer.query(`select pg_sleep($1)`, [0.03 + random() * 0.1]);
        const targeted = random() < 0.8;
        // the kind hit less so far is the first victim: both must be hit
        const claimFirst = kills.claim <= kills.complete;
        const order = claimFirst
          ? `query ~ 'claim_(jobs|runs)' desc, query ~ 'complete_runs?\\(' desc`
          : `query ~ 'complete_runs?\\(' desc, query ~ 'claim_(jobs|runs)' desc`;
        const victims = (
          await killer.query(
            `select query, pg_terminate_backend(pid) as killed
               from (select pid, query from pg_stat_activity
                      where datname = current_database() and pid <> pg_backend_pid() and application_name like 'canon %'
                        and ${targeted ? `wait_event_type = 'Lock'` : `state <> 'idle'`}
                      order by ${order}, random()
                      limit 2) v`,
          )
        ).rows as { query: string; killed: boolean }[];
        await killer.query('commit');
        for (const v of victims.filter((x) => x.killed)) {
          const q = v.query;
          kills[
            /claim_(jobs|runs)/.test(q)
              ? 'claim'
              : /complete_runs?\(/.test(q)
                ? 'complete'
                : /fail_run/.test(q)
                  ? 'fail'
                  : /append_event|enqueue_job|lock_entity|lock_run|begin_decision|finish_decision/.test(q)
                    ? 'decide'
                    : 'other'
          ]++;
        }
        await new Promise((r) => setTimeout(r, 100 + random() * 400));
      }
    } finally {
      await killer.end().catch(() => {});
    }
    await settle(rig, 'term', N);
    const total = Object.values(kills).reduce((a, b) => a + b, 0);
    await stopAndCheck(rig, 'pg_terminate_backend', 'term', N, ws, {
      faults: total,
      during_claim: kills.claim,
      during_complete: kills.complete,
      during_decide: kills.decide,
    });
    expect(kills.claim).toBeGreaterThan(0);
    expect(kills.complete).toBeGreaterThan(0);
  }, 300_000);
});

describe("a TCP proxy that drops and stalls the workers' connections at random", () => {
  it('keeps the same invariants', async () => {
    const N = soak(200);
    await docs(rig, 'proxy', N);
    const proxy = new FaultProxy({ host: '127.0.0.1', port: srv.cfg.port });
    const port = await proxy.listen();
    const proxied = new URL(url);
    proxied.port = String(port);
    const ws = startWorkers(rig, 2, proxied.toString());
    // the chaos begins once both workers are up and registered
    await waitFor(
      async () =>
        (
          await pool.query(`select count(*)::int as n from canon.workers where pid = any($1) and stopped_at is null`, [
            ws.map((w) => w.pid),
          ])
        ).rows[0].n === 2,
      { what: 'workers registered' },
    );
    proxy.chaos(
      { everyMs: 100, dropShare: 0.5, maxStallMs: 1500, stallThenDropShare: 0.3 },
      seeded(Number(process.env.CANON_FAULT_SEED ?? 20260102)),
    );
    try {
      await waitFor(
        async () => {
          const gone = ws.find((w) => w.exitCode !== null && w.exitCode !== undefined);
          if (gone)
            throw new Error(
              `a worker exited during the chaos (${gone.exitCode}): ${String((await gone).stderr).slice(-1500)}`,
            );
          return (await anchored(rig, 'proxy')) >= N * 0.8;
        },
        { timeout: 120_000, interval: 250, what: '80% anchored through the proxy' },
      );
      proxy.calm();
      await settle(rig, 'proxy', N);
    } finally {
      proxy.calm();
    }
    const st = proxy.stats;
    await stopAndCheck(rig, 'tcp proxy drop/stall', 'proxy', N, ws, {
      faults: st.drops + st.stalls,
      drops: st.drops,
      stalls: st.stalls,
      connections: st.connections,
    });
    await proxy.close();
    expect(st.drops).toBeGreaterThan(5);
    expect(st.stalls).toBeGreaterThan(5);
  }, 300_000);
});
