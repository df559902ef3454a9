// Finding and opening the database. DATABASE_URL wins; without it canon starts (or reuses)
// the embedded server. Commands that only read may be pointed at another server, a streaming
// replica say, with --read-url or CANON_READ_URL; writes always go to DATABASE_URL. Every
// connection failure becomes one line without the password.
import pg from 'pg';
import { CanonError, coerceError, databaseError, EXIT, isConnectionError, PG, pgCode } from '../errors.js';
import { DB_SQL } from '../sql/db.js';
import { embeddedUrl, startEmbedded } from './embedded.js';
import { canonTypes } from './pg-types.js';
import { connectionSettings } from './settings.js';
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

/** The read URL: `flag` (--read-url), else CANON_READ_URL; undefined when neither is set. */
export function readTarget(flag?: string): DbTarget | undefined {
  const fromFlag = flag !== undefined && flag !== '';
  const url = fromFlag ? flag : process.env.CANON_READ_URL;
  if (url === undefined || url === '') return undefined;
  const source = fromFlag ? ('--read-url' as const) : ('CANON_READ_URL' as const);
  const bad = validateUrl(url, source);
  if (bad) throw databaseError(bad);
  return { url, source };
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
export function friendlyDbError(err: unknown, url: string, source?: DbTarget['source']): CanonError {
  if (err instanceof CanonError) return err;
  const e = coerceError(err);
  const code = pgCode(err);
  const where = describeUrl(url);
  const named = source && source !== 'embedded' ? source : process.env.DATABASE_URL ? 'DATABASE_URL' : undefined;
  const fix = named ? `check ${named}` : 'run `canon db status`';
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
      msg = `database in ${where} does not exist: create it, or point ${named ?? 'DATABASE_URL'} at an existing one`;
      break;
    case PG.TOO_MANY_CONNECTIONS:
      msg = `Postgres at ${where} has no free connection slot (max_connections reached): make canon's pools smaller or raise max_connections (docs/OPERATIONS.md, pool sizing)`;
      break;
    case PG.CANNOT_CONNECT_NOW:
    case PG.ADMIN_SHUTDOWN:
      msg = `Postgres at ${where} is starting up or shutting down: retry in a moment`;
      break;
    default:
      if (/unsupported startup parameter/i.test(e.message)) {
        msg = `the pooler at ${where} refuses canon's session timeouts (${e.message.split('\n')[0]}): set CANON_POOLER=transaction (docs/OPERATIONS.md, PgBouncer)`;
        break;
      }
      if (/Query read timeout|timeout expired/i.test(e.message)) {
        msg = `cannot connect to Postgres at ${where}: no answer in time (${fix})`;
        break;
      }
      msg = `database error at ${where}: ${redact(e.message, url).split('\n')[0]}`;
  }
  // the driver's error stays attached: callers that wait and retry tell transient faults by it
  return Object.assign(new CanonError(redact(msg, url), EXIT.DATABASE), { cause: err });
}

export interface Db {
  pool: pg.Pool;
  target: DbTarget;
  close(): Promise<void>;
}

// Targets known to be behind a transaction pooler: set by CANON_POOLER or learnt when the
// pooler refused the timeouts canon sends at connect (PgBouncer: "unsupported startup
// parameter"). Every pool and client opened on such a URL afterwards is built for it.
const pooledTargets = new Set<string>();
const pooledPools = new WeakSet<pg.Pool>();

export function behindPooler(url: string): boolean {
  const mode = connectionSettings().pooler;
  return mode === 'transaction' || (mode === undefined && pooledTargets.has(url));
}

/**
 * A client's settings: the server-side timeouts as startup parameters (a direct connection
 * only: a transaction pooler refuses them and would not keep them for this client anyway),
 * the client-side reply limit, TCP keepalives and the connect timeout. unlimitedStatements:
 * no statement or reply limit, for migrations (an index build may take long; keepalives
 * still notice a dead peer).
 */
export function clientConfig(
  url: string,
  applicationName: string,
  opts: { unlimitedStatements?: boolean } = {},
): pg.ClientConfig {
  const s = connectionSettings();
  const server = behindPooler(url)
    ? {}
    : {
        statement_timeout: (!opts.unlimitedStatements && s.statementTimeoutMs) || undefined,
        lock_timeout: s.lockTimeoutMs || undefined,
        idle_in_transaction_session_timeout: s.idleInTransactionTimeoutMs || undefined,
      };
  return {
    connectionString: url,
    application_name: applicationName,
    connectionTimeoutMillis: s.connectTimeoutMs,
    query_timeout: (!opts.unlimitedStatements && s.queryTimeoutMs) || undefined,
    keepAlive: s.keepAliveMs > 0,
    keepAliveInitialDelayMillis: s.keepAliveMs || undefined,
    ...server,
  };
}

/** Every pool canon opens: the settings above, and lost connections that cannot crash the process. */
export function createPool(
  url: string,
  opts: { max: number; applicationName: string; unlimitedStatements?: boolean },
): pg.Pool {
  // canon's int8 parsers travel with its pools: as a library it leaves the application's pg alone
  const pool = new pg.Pool({ ...clientConfig(url, opts.applicationName, opts), max: opts.max, types: canonTypes });
  if (behindPooler(url)) pooledPools.add(pool);
  return survivesLostConnections(pool);
}

/**
 * A statement canon sends often, prepared once per connection (named) on a direct
 * connection. Behind a transaction pooler consecutive transactions of one client land on
 * different server connections, so a named statement is either missing or "already exists":
 * there it goes unnamed (parsed with each execution; canon's hot statements call a function,
 * whose own plans the server caches either way).
 */
export function prepared(
  db: pg.Pool | pg.ClientBase,
  q: { name: string; text: string; values: unknown[] },
): pg.QueryConfig {
  const pooled = pooledPools.has(db as pg.Pool) || connectionSettings().pooler === 'transaction';
  return pooled ? { text: q.text, values: q.values } : q;
}

/** The URL for LISTEN: CANON_LISTEN_URL, else DATABASE_URL unless it goes through a pooler (then none: poll). */
export function listenUrl(url: string): string | undefined {
  const direct = connectionSettings().listenUrl;
  if (direct !== undefined) {
    const bad = validateUrl(direct);
    if (bad) throw databaseError(bad.replace(/^DATABASE_URL/, 'CANON_LISTEN_URL'));
    return direct;
  }
  return behindPooler(url) ? undefined : url;
}

const refusedStartupParameter = (e: unknown) => /unsupported startup parameter/i.test(coerceError(e).message);

/** One client with canon's settings, learning (as openDb does) when the URL leads to a pooler. */
export async function connectClient(url: string, applicationName: string): Promise<pg.Client> {
  for (;;) {
    const client = new pg.Client(clientConfig(url, applicationName));
    client.on('error', () => {});
    try {
      await client.connect();
      return client;
    } catch (e) {
      await client.end().catch(() => {});
      if (behindPooler(url) || !refusedStartupParameter(e) || connectionSettings().pooler !== undefined)
        throw friendlyDbError(e, url);
      pooledTargets.add(url);
    }
  }
}

export async function openDb(
  opts: { max?: number; applicationName?: string; unlimitedStatements?: boolean; target?: DbTarget } = {},
): Promise<Db> {
  const target = opts.target ?? (await resolveTarget());
  const open = () =>
    createPool(target.url, {
      max: opts.max ?? 10,
      applicationName: opts.applicationName ?? 'canon',
      unlimitedStatements: opts.unlimitedStatements,
    });
  let pool = open();
  try {
    try {
      (await pool.connect()).release();
    } catch (e) {
      if (!refusedStartupParameter(e) || connectionSettings().pooler !== undefined) throw e;
      // a pooler (PgBouncer) in front of Postgres: connect again the way it accepts
      pooledTargets.add(target.url);
      await pool.end().catch(() => {});
      pool = open();
      (await pool.connect()).release();
    }
  } catch (e) {
    await pool.end().catch(() => {});
    throw friendlyDbError(e, target.url, target.source);
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

/**
 * Takes advisory lock `key` on a connection of its own and holds it until the returned
 * release() is called; undefined when `wait` is false and another process holds it. The
 * lock belongs to an open transaction, so it works through a transaction pooler as well (a
 * session lock there is taken on whichever server connection runs the statement, and the
 * unlock may run on another, leaving it held). It conflicts with the session lock older
 * canon processes take on the same key. Waiting polls, so no statement, lock or reply
 * timeout cuts a long wait short.
 */
export async function holdAdvisoryLock(
  pool: pg.Pool,
  key: number,
  wait: boolean,
): Promise<(() => Promise<void>) | undefined> {
  const c = await pool.connect();
  try {
    await c.query('begin');
    // held for as long as the work it guards: the idle-in-transaction limit is not for it
    await c.query(DB_SQL.holdForLock);
    for (let attempt = 0; !(await c.query(DB_SQL.tryXactLock, [key])).rows[0].locked; attempt++) {
      if (!wait) {
        await c.query('rollback');
        c.release();
        return undefined;
      }
      await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
    }
  } catch (e) {
    c.release(coerceError(e));
    throw e;
  }
  return async () => {
    try {
      await c.query('commit');
      c.release();
    } catch (e) {
      c.release(coerceError(e)); // the lock went with the connection
    }
  };
}

/** Runs fn inside a transaction on one client; rolls back on any error. */
export async function tx<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  let out: T;
  try {
    await c.query('begin');
    out = await fn(c);
    await c.query('commit');
  } catch (e) {
    // a connection that failed (a lost server, a reply that never came) is dropped, never
    // reused; the server rolls its transaction back when the connection ends
    if (isConnectionError(e)) c.release(coerceError(e));
    else {
      await c.query('rollback').catch(() => {});
      c.release();
    }
    throw e;
  }
  c.release();
  return out;
}
