// Test helpers: a fresh database per test file cloned from the migrated template, the real
// binary run as a process, and small factories. Databases are left behind on purpose so a
// failed test can be inspected; the next run's global setup drops them.
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { execa, type Options, type ResultPromise } from 'execa';
import pg from 'pg';
import { inject } from 'vitest';

pg.types.setTypeParser(20, (v) => Number(v));

export const root = path.resolve(import.meta.dirname, '..');
export const bin = path.join(root, 'bin', 'canon');

export interface TestDb {
  url: string;
  name: string;
  pool: pg.Pool;
  end(): Promise<void>;
}

export async function createTestDb(label = 'db'): Promise<TestDb> {
  const adminUrl = inject('adminUrl');
  const name = `canon_t_${label
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase()
    .slice(0, 20)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  // CREATE DATABASE ... TEMPLATE fails if another session is copying it at the same moment
  for (let i = 0; ; i++) {
    try {
      await admin.query(`create database ${name} template ${inject('templateDb')}`);
      break;
    } catch (e) {
      if (i > 50 || !/being accessed by other users/.test((e as Error).message)) throw e;
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
    }
  }
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = new pg.Pool({ connectionString: url, max: 30 });
  pool.on('error', () => {});
  return { url, name, pool, end: () => pool.end() };
}

/** An empty database (no canon schema) for migration tests. */
export async function createEmptyDb(label = 'empty'): Promise<TestDb> {
  const adminUrl = inject('adminUrl');
  const name = `canon_t_${label}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: u.toString(), max: 10 });
  pool.on('error', () => {});
  return { url: u.toString(), name, pool, end: () => pool.end() };
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs the real binary against a test database. */
export async function canon(
  args: string[],
  opts: { url?: string; env?: Record<string, string>; input?: string; timeout?: number } = {},
): Promise<RunResult> {
  const r = await execa('node', [bin, ...args], {
    env: { ...(opts.url ? { DATABASE_URL: opts.url } : {}), NO_COLOR: '1', ...opts.env },
    reject: false,
    input: opts.input,
    timeout: opts.timeout ?? 60_000,
    cwd: root,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Starts the real binary in the background (workers). */
export function spawnCanon(
  args: string[],
  opts: { url: string; env?: Record<string, string> } & Options,
): ResultPromise {
  const { url, env, ...rest } = opts;
  return execa('node', [bin, ...args], {
    env: { DATABASE_URL: url, NO_COLOR: '1', ...env },
    reject: false,
    cwd: root,
    ...rest,
  });
}

/** Asserts the shape of a bad-input failure: one line on stderr, no stack trace. */
export function oneLineError(r: RunResult): string {
  const lines = r.stderr.trim().split('\n').filter(Boolean);
  if (lines.length !== 1) throw new Error(`expected one stderr line, got ${lines.length}:\n${r.stderr}`);
  if (/\n\s+at /.test(r.stderr) || /\bat .*\.js:\d+/.test(r.stderr))
    throw new Error(`stack trace on stderr:\n${r.stderr}`);
  return lines[0];
}

export const uuid = () => randomUUID();

export async function waitFor<T>(
  fn: () => Promise<T | undefined | false>,
  opts: { timeout?: number; interval?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeout ?? 30_000);
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.what ?? 'condition'}`);
    await new Promise((r) => setTimeout(r, opts.interval ?? 100));
  }
}
