// Entities per second through three no-op steps run one after the other: canon's pipeline
// (bench/chain-pipeline.mjs: each step's result event queues a decision, which requires the
// next step) against the same three steps chained in graphile-worker (each task handler adds
// the next job with helpers.addJob), with its defaults and with its batched preset. Each
// system gets a fresh database on the same server, its N starting items inserted before its
// workers start (canon: N appended start events, which queue N decisions; graphile-worker: N
// step1 jobs), VACUUM (ANALYZE) after the insert, concurrency 10 in one process, quiet
// loggers. The clock runs from the workers' start until the database says every entity is
// done: no job queued or running (a step's next job or decision is written in the same
// transaction as its completion, so the queue is never empty mid-chain), then checked. The
// insert's time is kept beside it (entities_per_second_incl_insert counts from the first
// insert). WAL bytes per entity (the server's WAL position before and after the workers ran)
// show what each step writes; on a server shared with other work they include its WAL too.
import pg from 'pg';

const walPosition = async (pool) => (await pool.query('select pg_current_wal_lsn()::text as lsn')).rows[0].lsn;
const walBytesSince = async (pool, lsn) =>
  Number((await pool.query('select pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn) as n', [lsn])).rows[0].n);

import { freshDb, importDist, pipelineDb, silentCanonLogger, waitUntil } from './lib.mjs';

// How often the bench asks the database whether a run is over: the same for every system.
const DONE_POLL_MS = 20;

export async function canonChain(o) {
  // the pool `canon work` sizes for this concurrency on both lanes
  const { db, pool, pipeline } = await pipelineDb('chain_canon', o.concurrency * 2 + 4, 'chain-pipeline.mjs');
  try {
    const t0 = performance.now();
    await pool.query(
      `select canon.append_event('chain-' || i, 'chain.start', '{}'::jsonb, null, null, null, null, 'bench') from generate_series(1, $1) i`,
      [o.entities],
    );
    const insertMs = performance.now() - t0;
    await pool.query('vacuum (analyze)');
    const { Worker } = await importDist('src/engine/worker.js');
    const w = new Worker({
      pool,
      url: db.url,
      pipeline,
      lanes: ['decision', 'execution'],
      role: 'work',
      concurrency: o.concurrency,
      batchSize: o.batch,
      log: await silentCanonLogger(),
      listen: true,
      pollMs: 1000,
    });
    const wal0 = await walPosition(pool);
    const t = performance.now();
    const running = w.run();
    // a worker that fails must end the wait rather than leave it to the timeout
    let failed;
    running.catch((e) => (failed = e));
    await waitUntil(
      async () => {
        if (failed) throw failed;
        const r = await pool.query(
          `select exists (select 1 from canon.jobs where status = 'queued') or exists (select 1 from canon.jobs where status = 'running') as busy`,
        );
        return !r.rows[0].busy;
      },
      { everyMs: DONE_POLL_MS, timeoutMs: o.timeoutMs },
    );
    const ms = performance.now() - t;
    w.stop();
    const stats = await running;
    const walBytes = await walBytesSince(pool, wal0);
    const inspected = o.inspectWal ? await o.inspectWal(pool, wal0) : undefined;
    const check = (
      await pool.query(
        `select (select count(*) from canon.events where kind = 'step3.succeeded')::int as step3,
                (select count(*) from canon.entity_status where entity_id like 'chain-%' and status = 'completed')::int as completed,
                (select count(*) from canon.jobs where status <> 'succeeded')::int as not_succeeded,
                (select count(*) from canon.jobs where lane = 'decision')::int as decisions`,
      )
    ).rows[0];
    await pool.end();
    if (check.step3 !== o.entities || check.completed !== o.entities || check.not_succeeded !== 0) {
      throw new Error(
        `canon chain: ${check.step3} step3 results, ${check.completed} entities completed, ${check.not_succeeded} jobs not succeeded, for ${o.entities} entities`,
      );
    }
    return {
      system: 'canon',
      entities: o.entities,
      seconds: ms / 1000,
      entities_per_second: o.entities / (ms / 1000),
      insert_seconds: insertMs / 1000,
      // the same clock started at the first insert (the VACUUM (ANALYZE) between left out)
      entities_per_second_incl_insert: o.entities / ((insertMs + ms) / 1000),
      wal_bytes_per_entity: Math.round(walBytes / o.entities),
      ...(inspected ? { wal: inspected } : {}),
      decisions: check.decisions,
      errors: stats.errors,
      settings: `Worker API, lanes decision + execution in one process, concurrency ${o.concurrency}, claim batch ${o.batch}, LISTEN/NOTIFY, poll 1000 ms`,
    };
  } finally {
    await db.drop();
  }
}

export async function graphileChain(o, variant) {
  const db = await freshDb('chain_gw');
  const { run, runMigrations, Logger } = await import('graphile-worker');
  const logger = new Logger(() => () => {});
  try {
    await runMigrations({ connectionString: db.url, logger });
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    pool.on('error', () => {});
    const t0 = performance.now();
    await pool.query(
      `select graphile_worker.add_job('step1', json_build_object('i', i)) from generate_series(1, $1) i`,
      [o.entities],
    );
    const insertMs = performance.now() - t0;
    await pool.query('vacuum (analyze)');
    let finished = 0;
    const taskList = {
      step1: async (payload, helpers) => {
        await helpers.addJob('step2', payload);
      },
      step2: async (payload, helpers) => {
        await helpers.addJob('step3', payload);
      },
      step3: async () => {
        finished++;
      },
    };
    // "batched" is what graphile-worker's own perf test runs: a local queue and batched completions
    const preset =
      variant === 'batched' ? { worker: { localQueue: { size: 100 }, completeJobBatchDelay: 0 } } : undefined;
    const wal0 = await walPosition(pool);
    const t = performance.now();
    const runner = await run({
      connectionString: db.url,
      concurrency: o.concurrency,
      noHandleSignals: true,
      pollInterval: 1000,
      logger,
      taskList,
      ...(preset ? { preset } : {}),
    });
    await waitUntil(
      async () =>
        !(await pool.query('select exists (select 1 from graphile_worker._private_jobs) as busy')).rows[0].busy,
      { everyMs: DONE_POLL_MS, timeoutMs: o.timeoutMs },
    );
    const ms = performance.now() - t;
    await runner.stop();
    const walBytes = await walBytesSince(pool, wal0);
    await pool.end();
    if (finished !== o.entities)
      throw new Error(`graphile-worker chain: ${finished} step3 runs for ${o.entities} entities`);
    return {
      system: variant === 'batched' ? 'graphile-worker (batched)' : 'graphile-worker',
      entities: o.entities,
      seconds: ms / 1000,
      entities_per_second: o.entities / (ms / 1000),
      insert_seconds: insertMs / 1000,
      // the same clock started at the first insert (the VACUUM (ANALYZE) between left out)
      entities_per_second_incl_insert: o.entities / ((insertMs + ms) / 1000),
      wal_bytes_per_entity: Math.round(walBytes / o.entities),
      settings: `0.17.3, concurrency ${o.concurrency}, each handler adds the next job with helpers.addJob${preset ? ', localQueue.size 100, completeJobBatchDelay 0' : ', defaults'}`,
    };
  } finally {
    await db.drop();
  }
}
