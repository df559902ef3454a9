// No-op jobs per second through canon's execution lane, graphile-worker and pg-boss: the same
// server, one fresh database each, the same number of pre-inserted jobs, the same concurrency,
// in one process, one after the other; "done" is read from the database (queue empty), and
// each library is given the settings its own documentation recommends for throughput.
import pg from 'pg';
import { freshDb, importDist, noopPipelineDb, silentCanonLogger, waitUntil } from './lib.mjs';

export async function canonThroughput(o) {
  // the pool `canon work execute` would size for this concurrency
  const { db, pool, pipeline } = await noopPipelineDb('tp_canon', o.concurrency + 4);
  try {
    await pool.query(`select canon.enqueue_job('noop', 'tp-' || i) from generate_series(1, $1) i`, [o.jobs]);
    await pool.query('analyze');
    const { Worker } = await importDist('src/engine/worker.js');
    const log = await silentCanonLogger();
    const w = new Worker({
      pool,
      url: db.url,
      pipeline,
      lanes: ['execution'],
      role: 'execute',
      concurrency: o.concurrency,
      batchSize: o.batch,
      log,
      once: true,
      listen: true,
      pollMs: 1000,
    });
    const t = performance.now();
    const stats = await w.run();
    const ms = performance.now() - t;
    const left = (
      await pool.query(`select count(*)::int as n from canon.jobs where type = 'noop' and status <> 'succeeded'`)
    ).rows[0].n;
    const events = (await pool.query(`select count(*)::int as n from canon.events where kind = 'noop.succeeded'`))
      .rows[0].n;
    await pool.end();
    if (left !== 0 || events !== o.jobs)
      throw new Error(`canon: ${left} jobs left, ${events} result events for ${o.jobs} jobs`);
    return {
      system: 'canon',
      jobs: o.jobs,
      seconds: ms / 1000,
      jobs_per_second: o.jobs / (ms / 1000),
      errors: stats.errors,
      settings: `execution lane, concurrency ${o.concurrency}, claim batch ${o.batch}, LISTEN/NOTIFY`,
    };
  } finally {
    await db.drop();
  }
}

const quietGraphileLogger = async () => {
  const { Logger } = await import('graphile-worker');
  return new Logger(() => () => {});
};

export async function graphileThroughput(o, variant) {
  const db = await freshDb('tp_gw');
  const { run, runMigrations } = await import('graphile-worker');
  const logger = await quietGraphileLogger();
  try {
    await runMigrations({ connectionString: db.url, logger });
    const pool = new pg.Pool({ connectionString: db.url, max: 4 });
    await pool.query(`select graphile_worker.add_job('noop', '{}'::json) from generate_series(1, $1)`, [o.jobs]);
    await pool.query('analyze');
    // "batched" is what graphile-worker's own perf test runs: a local queue and batched completions
    const preset =
      variant === 'batched' ? { worker: { localQueue: { size: 100 }, completeJobBatchDelay: 0 } } : undefined;
    const t = performance.now();
    const runner = await run({
      connectionString: db.url,
      concurrency: o.concurrency,
      noHandleSignals: true,
      pollInterval: 1000,
      logger,
      taskList: { noop: async () => {} },
      ...(preset ? { preset } : {}),
    });
    await waitUntil(
      async () => (await pool.query('select count(*)::int as n from graphile_worker._private_jobs')).rows[0].n === 0,
    );
    const ms = performance.now() - t;
    await runner.stop();
    await pool.end();
    return {
      system: variant === 'batched' ? 'graphile-worker (batched)' : 'graphile-worker',
      jobs: o.jobs,
      seconds: ms / 1000,
      jobs_per_second: o.jobs / (ms / 1000),
      settings: `0.17.3, concurrency ${o.concurrency}${preset ? ', localQueue.size 100, completeJobBatchDelay 0' : ', defaults'}`,
    };
  } finally {
    await db.drop();
  }
}

export async function pgBossThroughput(o) {
  const db = await freshDb('tp_boss');
  const { default: PgBoss } = await import('pg-boss');
  try {
    const boss = new PgBoss({ connectionString: db.url, max: o.concurrency + 2 });
    boss.on('error', () => {});
    await boss.start();
    await boss.createQueue('noop');
    for (let i = 0; i < o.jobs; i += 5000)
      await boss.insert(Array.from({ length: Math.min(5000, o.jobs - i) }, () => ({ name: 'noop', data: {} })));
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    await pool.query('analyze');
    const t = performance.now();
    // pg-boss 10 polls: each work() loop fetches a batch, runs it, then waits the interval
    for (let i = 0; i < o.concurrency; i++)
      await boss.work('noop', { batchSize: 100, pollingIntervalSeconds: 0.5 }, async () => {});
    await waitUntil(
      async () =>
        (await pool.query(`select count(*)::int as n from pgboss.job where name = 'noop' and state <> 'completed'`))
          .rows[0].n === 0,
    );
    const ms = performance.now() - t;
    await boss.stop({ graceful: false, wait: true, timeout: 2000 }).catch(() => {});
    await pool.end();
    return {
      system: 'pg-boss',
      jobs: o.jobs,
      seconds: ms / 1000,
      jobs_per_second: o.jobs / (ms / 1000),
      settings: `10.4.2, ${o.concurrency} work() loops, batchSize 100, pollingIntervalSeconds 0.5`,
    };
  } finally {
    await db.drop();
  }
}
