// Event appended → handler started, over sequential events: canon's whole path (the append
// commits, the core trigger queues a decision, the decider requires a noop job through the
// gateway, the executor claims it and starts the handler), against graphile-worker's
// add_job → task start. Workers wait on LISTEN/NOTIFY in both; a small random pause before
// each event keeps the measurement off any polling rhythm.
import { freshDb, importDist, noopPipelineDb, silentCanonLogger, sleep, stats } from './lib.mjs';

function starts() {
  const waiting = new Map();
  return {
    started(key, at) {
      waiting.get(key)?.(at);
      waiting.delete(key);
    },
    wait(key, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`handler for ${key} did not start within ${timeoutMs} ms`)), timeoutMs);
        waiting.set(key, (at) => {
          clearTimeout(t);
          resolve(at);
        });
      });
    },
  };
}

export async function canonLatency(o) {
  const { db, pool, pipeline } = await noopPipelineDb('lat_canon', o.concurrency * 2 + 6);
  try {
    const { Worker } = await importDist('src/engine/worker.js');
    const { appendEvent } = await importDist('src/ledger.js');
    const s = starts();
    globalThis.__canonBenchStarted = s.started;
    const w = new Worker({ pool, url: db.url, pipeline, lanes: ['decision', 'execution'], role: 'work', concurrency: o.concurrency, batchSize: 10, log: await silentCanonLogger(), listen: true, pollMs: 1000 });
    const done = w.run();
    await sleep(300); // LISTEN established
    const ms = [];
    for (let i = 0; i < o.warmup + o.events; i++) {
      await sleep(Math.random() * 5);
      const id = `lat-${i}`;
      const started = s.wait(id);
      const t = performance.now();
      await appendEvent(pool, { entityId: id, kind: 'bench.ping', payload: { i }, actor: 'bench' });
      const at = await started;
      if (i >= o.warmup) ms.push(at - t);
    }
    w.stop();
    await done;
    await pool.end();
    delete globalThis.__canonBenchStarted;
    return { system: 'canon', ...stats(ms), path: 'events append → decision → gateway → execution handler start' };
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
    const runner = await run({ connectionString: db.url, concurrency: o.concurrency, noHandleSignals: true, logger, taskList: { lat: async (payload) => s.started(payload.i, performance.now()) } });
    const utils = await makeWorkerUtils({ connectionString: db.url, logger });
    await sleep(300);
    const ms = [];
    for (let i = 0; i < o.warmup + o.events; i++) {
      await sleep(Math.random() * 5);
      const started = s.wait(i);
      const t = performance.now();
      await utils.addJob('lat', { i });
      const at = await started;
      if (i >= o.warmup) ms.push(at - t);
    }
    await utils.release();
    await runner.stop();
    return { system: 'graphile-worker', ...stats(ms), path: 'add_job → task start' };
  } finally {
    await db.drop();
  }
}
