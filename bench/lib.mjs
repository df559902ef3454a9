// Shared by the benchmark sections: where the server is, throwaway databases, percentiles,
// whole-process timing, and silence for the libraries' loggers.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const dist = (p) => path.join(root, 'dist', p);
export const canonBin = path.join(root, 'bin', 'canon');
const importDist = (p) => import(dist(p));

pg.types.setTypeParser(20, (v) => Number(v));

// Set by `--server debian|URL` (bench/server.mjs); without it the server is found as below.
let serverBase;

/** Points every section at another server (a URL of any database on it). */
export function pointAtServer(url) {
  serverBase = url;
}

/** The server: the one `pointAtServer` named, else DATABASE_URL's when set (its database is left alone, siblings are created), else canon's embedded one. */
export async function serverUrl(database) {
  let base = serverBase ?? process.env.DATABASE_URL;
  if (!base) {
    const { startEmbedded, embeddedUrl } = await importDist('src/db/embedded.js');
    base = embeddedUrl(await startEmbedded(), 'postgres');
  }
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function adminQuery(sql, params) {
  const c = new pg.Client({ connectionString: await serverUrl('postgres') });
  await c.connect();
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

export async function databaseExists(name) {
  return (await adminQuery('select 1 from pg_database where datname = $1', [name])).rowCount > 0;
}

/** A fresh database for one measurement; `drop()` removes it. */
export async function freshDb(label) {
  const name = `canon_bench_${label}_${randomBytes(3).toString('hex')}`;
  await adminQuery(`create database ${name}`);
  const url = await serverUrl(name);
  return { name, url, drop: () => dropDb(name) };
}

// No FORCE: a peer library's pool that is still closing would get a FATAL on an idle client
// and, without an error listener, crash the benchmark. Wait for it instead; give up quietly.
async function dropDb(name) {
  for (let i = 0; i < 10; i++) {
    try {
      await adminQuery(`drop database if exists ${name}`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export async function migrateDb(url) {
  const { migrate } = await importDist('src/migrate.js');
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await migrate(c);
  } finally {
    await c.end();
  }
}

/** A fresh, migrated database with the benchmark's noop pipeline synced, and a pool on it. */
export function noopPipelineDb(label, poolMax) {
  return pipelineDb(label, poolMax, 'noop-pipeline.mjs');
}

/** A fresh, migrated database with one of bench/'s pipeline modules synced, and a pool on it. */
export async function pipelineDb(label, poolMax, file) {
  const db = await freshDb(label);
  await migrateDb(db.url);
  const { loadPipeline } = await importDist('src/pipeline/load.js');
  const { syncPipeline } = await importDist('src/pipeline/sync.js');
  const { pipeline } = await loadPipeline(path.join(root, 'bench', file));
  const pool = new pg.Pool({ connectionString: db.url, max: poolMax });
  pool.on('error', () => {});
  await syncPipeline(pool, pipeline);
  return { db, pool, pipeline };
}

export function percentile(xs, p) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export const median = (xs) => percentile(xs, 50);
export const round = (x, d = 2) => (x === null || x === undefined ? null : Math.round(x * 10 ** d) / 10 ** d);

export function stats(ms) {
  return {
    n: ms.length,
    p50: round(percentile(ms, 50)),
    p95: round(percentile(ms, 95)),
    p99: round(percentile(ms, 99)),
    max: round(Math.max(...ms)),
  };
}

/** Times `fn` n times (after `warmup` untimed calls), in milliseconds. */
export async function timeCalls(n, fn, warmup = 2) {
  for (let i = 0; i < warmup; i++) await fn(i);
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    out.push(performance.now() - t);
  }
  return out;
}

/** Runs the canon binary as a whole process; resolves with its wall time and output. */
export function runCanon(args, env = {}) {
  return new Promise((resolve) => {
    const t = performance.now();
    execFile(
      'node',
      [canonBin, ...args],
      { cwd: root, env: { ...process.env, NO_COLOR: '1', ...env }, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({
          ms: performance.now() - t,
          code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
          stdout: String(stdout),
          stderr: String(stderr),
        });
      },
    );
  });
}

export async function waitUntil(fn, { timeoutMs = 600_000, everyMs = 20 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error('benchmark timed out waiting for the queue to drain');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function silentCanonLogger() {
  const { createLogger } = await importDist('src/engine/log.js');
  return createLogger({ level: 'silent' });
}

export { importDist };

/** The dataset for reads: loaded once with `canon load` at the size's scale, then reused. */
export async function dataset(name, scale, note) {
  const url = await serverUrl(name);
  if (!(await databaseExists(name))) {
    await adminQuery(`create database ${name}`);
    note(
      `loading the dataset into ${name} (canon load${scale === 1 ? '' : ` --scale ${scale}`}); it is kept for later runs`,
    );
  }
  const env = { DATABASE_URL: url };
  const m = await runCanon(['migrate'], env);
  if (m.code !== 0) throw new Error(`canon migrate on ${name}: ${m.stderr.trim()}`);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const marker = (await c.query(`select value from canon.settings where key = 'load'`)).rows[0]?.value;
  await c.end();
  const state = marker ? JSON.parse(marker) : null;
  if (state?.status !== 'complete') {
    const args = ['load', ...(scale === 1 ? [] : ['--scale', String(scale)]), ...(state ? ['--resume'] : [])];
    const r = await new Promise((resolve) => {
      const child = spawn('node', [canonBin, ...args], {
        cwd: root,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      child.on('close', (code) => resolve(code));
    });
    if (r !== 0) throw new Error(`canon load into ${name} exited ${r}`);
  }
  return url;
}
