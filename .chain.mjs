// scratch: N entities through a three-step no-op pipeline in canon (tree given by argv[2])
import pg from 'pg';
const [root, url, nStr, batch] = process.argv.slice(2);
const N = Number(nStr ?? 2000);
const { Worker } = await import(`${root}/dist/src/engine/worker.js`);
const { createLogger } = await import(`${root}/dist/src/engine/log.js`).catch(() => ({}));
const { syncPipeline } = await import(`${root}/dist/src/pipeline/sync.js`).catch(() => ({}));
const pipeline = {
  name: 'chain',
  jobTypes: { step1: { maxAttempts: 3, timeoutSeconds: 60 }, step2: { maxAttempts: 3, timeoutSeconds: 60 }, step3: { maxAttempts: 3, timeoutSeconds: 60 } },
  authority(entity) {
    const k = new Set(entity.events.map((e) => e.kind));
    if (k.has('step3.succeeded')) return { done: true };
    if (k.has('step2.succeeded')) return { required: [{ type: 'step3' }] };
    if (k.has('step1.succeeded')) return { required: [{ type: 'step2' }] };
    return { required: [{ type: 'step1' }] };
  },
  handlers: { step1: async () => null, step2: async () => null, step3: async () => null },
};
const pool = new pg.Pool({ connectionString: url, max: 14 });
const log = createLogger ? createLogger({ level: 'silent' }) : { child() { return this; }, debug() {}, info() {}, warn() {}, error() {} };
for (const t of ['step1', 'step2', 'step3']) await pool.query(`insert into canon.job_types (name, lane, max_attempts, timeout_seconds) values ($1, 'execution', 3, 60) on conflict do nothing`, [t]);
await pool.query(`alter table canon.events disable trigger canon_core_trigger`);
await pool.query(`insert into canon.events (entity_id, kind, payload, correlation_id, actor) select 'c-' || i, 'chain.started', '{}', '', '' from generate_series(1, $1) i`, [N]);
await pool.query(`alter table canon.events enable trigger canon_core_trigger`);
await pool.query(`select canon.enqueue_job('decide', 'c-' || i) from generate_series(1, $1) i`, [N]);
await pool.query('analyze');
const w = new Worker({ pool, url, pipeline, lanes: ['decision', 'execution'], role: 'work', concurrency: 10, batchSize: Number(batch ?? 10), log, once: true, listen: true, pollMs: 1000 });
const t = performance.now();
const s = await w.run();
const sec = (performance.now() - t) / 1000;
const done = (await pool.query(`select count(*)::int n from canon.events where kind = 'step3.succeeded'`)).rows[0].n;
console.log(JSON.stringify({ root, N, sec: +sec.toFixed(2), eps: +(N / sec).toFixed(1), done, errors: s.errors, fenced: s.fenced }));
await pool.end();
