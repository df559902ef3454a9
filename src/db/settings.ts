// How canon's connections behave in production, from the environment: the server-side
// timeouts every session gets, the client-side limit on waiting for a reply, TCP keepalives,
// and whether the URL leads to a transaction pooler (PgBouncer) or straight to Postgres.
// One reader for every command, so a worker, `canon tick` and `canon status` agree.
import { usageError } from '../errors.js';

export type PoolerMode = 'none' | 'transaction';

export interface ConnectionSettings {
  /** server: a statement running longer is cancelled (0 = no limit) */
  statementTimeoutMs: number;
  /** server: waiting longer for a row or table lock fails the statement */
  lockTimeoutMs: number;
  /** server: a session idle inside a transaction this long is ended */
  idleInTransactionTimeoutMs: number;
  /** client: a reply that does not arrive within this abandons the connection (0 = wait forever) */
  queryTimeoutMs: number;
  /** client: giving up on opening a connection */
  connectTimeoutMs: number;
  /** TCP keepalive: first probe after this much silence (0 = off) */
  keepAliveMs: number;
  /** 'transaction' when DATABASE_URL leads to a transaction pooler; undefined = detect */
  pooler?: PoolerMode;
  /** a direct (session) connection for LISTEN when DATABASE_URL goes through a pooler */
  listenUrl?: string;
}

/** "250ms", "30s", "2min", "1h" or a bare number of milliseconds. */
export function parseDuration(name: string, text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h)?\s*$/.exec(text);
  if (!m)
    throw usageError(`${name}="${text}" is not a duration: write milliseconds or a number with ms, s, min or h (30s)`);
  const unit = { ms: 1, s: 1000, min: 60_000, h: 3_600_000 }[m[2] ?? 'ms'] as number;
  return Math.round(Number(m[1]) * unit);
}

function duration(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const v = env[name];
  return v === undefined || v === '' ? fallback : parseDuration(name, v);
}

export function connectionSettings(env: NodeJS.ProcessEnv = process.env): ConnectionSettings {
  const statementTimeoutMs = duration(env, 'CANON_STATEMENT_TIMEOUT', 60_000);
  const pooler = env.CANON_POOLER;
  if (pooler !== undefined && pooler !== '' && pooler !== 'none' && pooler !== 'transaction')
    throw usageError(`CANON_POOLER="${pooler}": expected "transaction" (PgBouncer in transaction mode) or "none"`);
  return {
    statementTimeoutMs,
    lockTimeoutMs: duration(env, 'CANON_LOCK_TIMEOUT', 10_000),
    idleInTransactionTimeoutMs: duration(env, 'CANON_IDLE_IN_TRANSACTION_TIMEOUT', 60_000),
    // longer than the statement timeout: the server cancels a slow statement itself (a clear
    // error, the connection kept); only a reply that never comes (a stalled network, a hung
    // pooler) is left to the client, which then drops the connection
    queryTimeoutMs: duration(env, 'CANON_QUERY_TIMEOUT', statementTimeoutMs > 0 ? statementTimeoutMs + 15_000 : 0),
    connectTimeoutMs: duration(env, 'CANON_CONNECT_TIMEOUT', 10_000),
    keepAliveMs: duration(env, 'CANON_KEEPALIVE', 10_000),
    pooler: pooler === 'none' || pooler === 'transaction' ? pooler : undefined,
    listenUrl: env.CANON_LISTEN_URL || undefined,
  };
}
