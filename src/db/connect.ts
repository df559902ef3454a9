// Finding and opening the database. DATABASE_URL wins; without it canon starts (or reuses)
// the embedded server. Every connection failure becomes one line without the password.
import pg from 'pg';
import { CanonError, coerceError, databaseError, EXIT, PG, pgCode } from '../errors.js';
import { embeddedUrl, startEmbedded } from './embedded.js';
import { type DbTarget, describeUrl, redact, validateUrl } from './url.js';

export async function resolveTarget(): Promise<DbTarget> {
  const env = process.env.DATABASE_URL;
  if (env !== undefined && env !== '') {
    const bad = validateUrl(env);
    if (bad) throw databaseError(bad);
    return { url: env, source: 'DATABASE_URL' };
  }
  const cfg = await startEmbedded();
  const target = { url: embeddedUrl(cfg), source: 'embedded' as const };
  await ensureDatabase(target.url);
  return target;
}

/** Creates the embedded server's `canon` database on first use. */
async function ensureDatabase(url: string): Promise<void> {
  const u = new URL(url);
  const name = u.pathname.slice(1);
  u.pathname = '/postgres';
  const client = new pg.Client({ connectionString: u.toString() });
  try {
    await client.connect();
    const r = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (r.rowCount === 0) {
      try {
        await client.query(`create database "${name.replace(/"/g, '""')}"`);
      } catch (e) {
        if (pgCode(e) !== '42P04') throw e; // created by a concurrent canon process
      }
    }
  } catch (e) {
    throw friendlyDbError(e, url);
  } finally {
    await client.end().catch(() => {});
  }
}

/** One line saying what is wrong with the connection and what to do about it. */
export function friendlyDbError(err: unknown, url: string): CanonError {
  if (err instanceof CanonError) return err;
  const e = coerceError(err);
  const code = pgCode(err);
  const where = describeUrl(url);
  const fix = process.env.DATABASE_URL ? 'check DATABASE_URL' : 'run `canon db status`';
  let msg: string;
  switch (code) {
    case 'ECONNREFUSED':
      msg = `cannot connect to Postgres at ${where}: connection refused (is the server running? ${fix})`;
      break;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      msg = `cannot connect to Postgres at ${where}: host not found (${fix})`;
      break;
    case 'ETIMEDOUT':
      msg = `cannot connect to Postgres at ${where}: timed out (${fix})`;
      break;
    case PG.INVALID_PASSWORD:
    case PG.INVALID_AUTHORIZATION:
      msg = `Postgres at ${where} refused the login: wrong user or password (${fix})`;
      break;
    case PG.INVALID_CATALOG:
      msg = `database in ${where} does not exist: create it, or point DATABASE_URL at an existing one`;
      break;
    case PG.CANNOT_CONNECT_NOW:
    case PG.ADMIN_SHUTDOWN:
      msg = `Postgres at ${where} is starting up or shutting down: retry in a moment`;
      break;
    default:
      msg = `database error at ${where}: ${redact(e.message, url).split('\n')[0]}`;
  }
  return new CanonError(redact(msg, url), EXIT.DATABASE);
}

export interface Db {
  pool: pg.Pool;
  target: DbTarget;
  close(): Promise<void>;
}

export async function openDb(opts: { max?: number; applicationName?: string } = {}): Promise<Db> {
  const target = await resolveTarget();
  const pool = new pg.Pool({
    connectionString: target.url,
    max: opts.max ?? 10,
    application_name: opts.applicationName ?? 'canon',
    connectionTimeoutMillis: 10_000,
  });
  survivesLostConnections(pool);
  try {
    const c = await pool.connect();
    c.release();
  } catch (e) {
    await pool.end().catch(() => {});
    throw friendlyDbError(e, target.url);
  }
  return { pool, target, close: () => pool.end() };
}

/**
 * A lost server must not crash the process. pg emits 'error' on a client whose connection
 * breaks; the pool listens only while a client is idle, so a checked-out client (a decision's
 * transaction, the tick's lock) without a listener of its own took the process down with an
 * unhandled 'error' event when Postgres restarted. Every client gets one: the query in flight
 * still rejects, and the next one on that client reports it as a connection error.
 */
export function survivesLostConnections(pool: pg.Pool): pg.Pool {
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/** Runs fn inside a transaction on one client; rolls back on any error. */
export async function tx<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('begin');
    const out = await fn(c);
    await c.query('commit');
    return out;
  } catch (e) {
    await c.query('rollback').catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}
