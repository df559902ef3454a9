// Two hops at low load: canon's event appended → decision → execution handler started (the
// append commits, the core trigger queues a decision, the decider requires a noop job through
// the gateway, the executor claims it and starts the handler), against graphile-worker's
// equivalent: step1 added → its handler adds step2 → step2's handler started. Workers wait
// on LISTEN/NOTIFY in both, concurrency 10, both of canon's lanes in one process.
//   closed loop: one event at a time, the next after the handler started and a random 0–5 ms
//                pause (which keeps the measurement off any polling rhythm);
//   open loop:   a steady rate (40 events/s), sent whatever the handlers do; the sender keeps
//                each send time and the handler each start time, in memory, and the two are
//                compared afterwards, so nothing queries the server while samples are taken.
// The first `warmup` events of each run are not counted. A run that cannot keep up (a server
// that JIT-compiles a statement on every call takes seconds per event) is cut off at its time
// budget, and what was left unfinished is reported.
import { freshDb, importDist, noopPipelineDb, silentCanonLogger, sleep, stats } from './lib.mjs';

/** Handler start times by key, and a way to wait for one. */
function starts() {
  const at = new Map();
  const waiting = new Map();
  return {
    at,
    started(key, t) {
      if (at.has(key)) return; // a retried handler: its first start counts
      at.set(key, t);
      waiting.get(key)?.(t);
      waiting.delete(key);
    },
    wait(key, timeoutMs) {
      if (at.has(key)) return Promise.resolve(at.get(key));
      return new Promise((resolve) => {
        const t = setTimeout(() => {
          waiting.delete(key);
          resolve(null);
        }, timeoutMs);
        waiting.set(key, (v) => {
          clearTimeout(t);
          resolve(v);
        });
      });
    },
    /** Resolves when every key has started, or at the deadline. */
    async all(keys, deadline) {
      for (const k of keys) {
        const left = deadline - performance.now();
        if (left <= 0) break;
        await this.wait(k, left);
      }
    },
  };
}

/**
 * Sends events with `send(i)` (each resolves when the event is committed) and measures send →
 * handler start for each, closed or open loop; `s` holds the handler start times by index.
 */
async function measure(o, s, send) {
  const total = o.warmup + o.events;
  const sentAt = [];
  const budgetEnd = performance.now() + o.budgetMs;
  let cut = false;
  if (o.loop === 'closed') {
    for (let i = 0; i < total; i++) {
      if (performance.now() > budgetEnd) {
        cut = true;
        break;
      }
      await sleep(Math.random() * 5);
      sentAt[i] = performance.now();
      await send(i);
      // not started by the end of the budget: the run is over (a timer may fire a little early)
      if ((await s.wait(i, Math.max(1, budgetEnd - performance.now()))) === null) {
        cut = true;
        break;
      }
    }
  } else {
    // sends are scheduled on absolute times, so a late timer does not slow the rate down
    const every = 1000 / o.rate;
    const t0 = performance.now() + 50;
    const pending = [];
    for (let i = 0; i < total; i++) {
      const wait = t0 + i * every - performance.now();
      if (wait > 0) await sleep(wait);
      sentAt[i] = performance.now();
      pending.push(send(i));
    }
    await Promise.all(pending);
    await s.all(
      sentAt.map((_, i) => i),
      Math.max(performance.now() + 5000, budgetEnd),
    );
  }
  const ms = [];
  let unfinished = 0;
  for (let i = o.warmup; i < sentAt.length; i++) {
    const at = s.at.get(i);
    if (at === undefined) unfinished++;
    else ms.push(at - sentAt[i]);
  }
  const out = {
    loop: o.loop,
    ...(o.loop === 'open' ? { rate_per_second: o.rate } : {}),
    ...(ms.length ? stats(ms) : { n: 0, p50: null, p99: null }),
  };
  if (unfinished || cut)
    Object.assign(out, { unfinished, cut_off: cut, sent: sentAt.length - o.warmup, budget_seconds: o.budgetMs / 1000 });
  // an unfinished sample took longer than every finished one: the percentiles above would flatter the run
  if (unfinished) Object.assign(out, { p50: null, p99: null, p50_of_finished: out.p50, p99_of_finished: out.p99 });
  return out;
}

export async function canonLatency(o) {
  const { db, pool, pipeline } = await noopPipelineDb('lat_canon', o.concurrency * 2 + 6);
  try {
    const { Worker } = await importDist('src/engine/worker.js');
    const { appendEvent } = await importDist('src/ledger.js');
    const s = starts();
    // the noop handler reports its entity id; the entity ids carry the event's index
    globalThis.__canonBenchStarted = (id, at) => s.started(Number(id.slice(4)), at);
    const w = new Worker({
      pool,
      url: db.url,
      pipeline,
      lanes: ['decision', 'execution'],
      role: 'work',
      concurrency: o.concurrency,
      batchSize: 10,
      log: await silentCanonLogger(),
      listen: true,
      pollMs: 1000,
    });
    const done = w.run();
    await sleep(300); // LISTEN established
    const r = await measure(o, s, (i) =>
      appendEvent(pool, { entityId: `lat-${i}`, kind: 'bench.ping', payload: { i }, actor: 'bench' }),
    );
    w.stop();
    await done;
    await pool.end();
    delete globalThis.__canonBenchStarted;
    return { system: 'canon', ...r, path: 'events append → decision → gateway → execution handler start' };
  } finally {
    await db.drop();
  }
}

export async function graphileLatency(o) {
  const db = await freshDb('lat_gw');
  const { run, runMigrations, makeWorkerUtils, Logger } = await import('graphile-worker');
  const logger = new Logger(() => () => {});
  try {
    await runMigrations({ connectionString: db.url, logger });
    const s = starts();
    const taskList = {
      step1: async (payload, helpers) => {
        await helpers.addJob('step2', payload);
      },
      step2: async (payload) => s.started(payload.i, performance.now()),
    };
    const runner = await run({
      connectionString: db.url,
      concurrency: o.concurrency,
      noHandleSignals: true,
      logger,
      taskList,
    });
    const utils = await makeWorkerUtils({ connectionString: db.url, logger });
    await sleep(300);
    const r = await measure(o, s, (i) => utils.addJob('step1', { i }));
    await utils.release();
    await runner.stop();
    return {
      system: 'graphile-worker',
      ...r,
      path: 'add_job step1 → step1 handler adds step2 → step2 handler start (defaults)',
    };
  } finally {
    await db.drop();
  }
}
