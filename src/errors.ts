// Errors that reach the user. Every failure a person can cause (bad arguments, a bad
// payload, an unreachable server) becomes a CanonError with one line of text and an exit
// code; anything else is a bug and is printed with its stack only under --debug.

export const EXIT = {
  OK: 0,
  FAILURE: 1, // the operation ran and found a problem (a contract failed, a claim failed)
  USAGE: 2, // bad arguments or bad input; nothing was changed
  DATABASE: 3, // the database is unreachable, misconfigured or not migrated
  CONFLICT: 4, // optimistic concurrency: someone else wrote first; re-read and retry
} as const;

export class CanonError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT.FAILURE) {
    super(message);
    this.name = 'CanonError';
    this.exitCode = exitCode;
  }
}

export const usageError = (message: string) => new CanonError(message, EXIT.USAGE);
export const databaseError = (message: string) => new CanonError(message, EXIT.DATABASE);
export const conflictError = (message: string) => new CanonError(message, EXIT.CONFLICT);

/** Turns any thrown value into an Error so callers never handle strings or undefined. */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  try {
    // undefined, a function or a symbol have no JSON: an empty message would leave a dead job without a reason
    const json = JSON.stringify(value);
    return new Error(json === undefined ? `a value that is not an Error was thrown: ${String(value)}` : json);
  } catch {
    return new Error(String(value));
  }
}

/** Postgres SQLSTATE codes canon reacts to, named (graphile-worker keeps the same kind of list). */
export const PG = {
  UNIQUE_VIOLATION: '23505',
  CHECK_VIOLATION: '23514',
  FOREIGN_KEY_VIOLATION: '23503',
  SERIALIZATION_FAILURE: '40001',
  DEADLOCK: '40P01',
  INVALID_PASSWORD: '28P01',
  INVALID_AUTHORIZATION: '28000',
  INVALID_CATALOG: '3D000',
  UNDEFINED_TABLE: '42P01',
  UNDEFINED_FUNCTION: '42883',
  INVALID_SCHEMA: '3F000',
  INSUFFICIENT_PRIVILEGE: '42501',
  ADMIN_SHUTDOWN: '57P01',
  QUERY_CANCELED: '57014', // statement_timeout, or a cancel request
  LOCK_NOT_AVAILABLE: '55P03', // lock_timeout
  IDLE_IN_TRANSACTION_TIMEOUT: '25P03',
  TOO_MANY_CONNECTIONS: '53300',
  CANNOT_CONNECT_NOW: '57P03',
  INVALID_TEXT: '22P02',
  INVALID_JSON: '22P02',
  UNTRANSLATABLE: '22P05',
  CHARACTER_NOT_IN_REPERTOIRE: '22021',
  PROGRAM_LIMIT: '54000',
  OBJECT_IN_USE: '55006', // CREATE DATABASE … TEMPLATE while another session copies the template
  READ_ONLY_TRANSACTION: '25006', // a write on a standby (or in a read-only transaction)
  // canon's own codes, raised by its SQL functions (class CN = canon)
  CANON_CONFLICT: 'CN001', // stale expected seq
  CANON_IMMUTABLE: 'CN002', // the ledger refuses UPDATE/DELETE/TRUNCATE
  CANON_GATEWAY: 'CN003', // strict mode refused a job that did not come through the gateway
  CANON_UNKNOWN_TYPE: 'CN004', // job type not whitelisted, or wrong lane
  CANON_BAD_INPUT: 'CN005', // a SQL function refused its arguments
  CANON_NOT_FOUND: 'CN006',
} as const;

export function pgCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/**
 * The run a worker holds no longer exists: its claim committed without waiting for the disk
 * (docs/decisions/0001-asynchronous-claims-and-the-run-id-guard.md) and a server crash lost it. Run ids are never reissued, so this is the
 * run being taken away, like a rescue: nothing to record, the job runs again.
 */
export function isRunGone(err: unknown): boolean {
  return pgCode(err) === PG.CANON_NOT_FOUND && /^run \d+ does not exist$/.test(coerceError(err).message);
}

/** True when an error means "the connection or server went away": retry after reconnecting. */
export function isConnectionError(err: unknown): boolean {
  // a pooler refusing canon's connection settings: configuration, not an outage
  if (/unsupported startup parameter/i.test(coerceError(err).message)) return false;
  const code = pgCode(err);
  if (
    code &&
    [
      'ECONNREFUSED',
      'ECONNRESET',
      'EPIPE',
      'ETIMEDOUT',
      'ENOTFOUND',
      'EHOSTUNREACH',
      '57P01',
      '57P02',
      '57P03',
      '08000',
      '08003',
      '08006',
      '08001',
      '08004',
      '08P01', // PgBouncer's own failures (query_wait_timeout, server login retry)
      PG.TOO_MANY_CONNECTIONS,
      PG.IDLE_IN_TRANSACTION_TIMEOUT,
    ].includes(code)
  )
    return true;
  const msg = coerceError(err).message;
  return /Connection terminated|connection is closed|Client has encountered a connection error|not queryable|terminating connection|Query read timeout|timeout expired/i.test(
    msg,
  );
}

/**
 * Worth retrying with backoff: the connection failed, or the server gave up on a statement
 * (statement or lock timeout, a serialization failure, a deadlock) and rolled it back. canon's
 * engine calls are safe to repeat: claims are new transactions, completions and failures are
 * fenced by the run id (a second one is refused, never doubled).
 */
export function isTransientDbError(err: unknown): boolean {
  if (isConnectionError(err)) return true;
  const code = pgCode(err);
  return (
    code === PG.QUERY_CANCELED ||
    code === PG.LOCK_NOT_AVAILABLE ||
    code === PG.SERIALIZATION_FAILURE ||
    code === PG.DEADLOCK
  );
}

/** What kind of database fault an error is, in a few words: a log line per kind, not per retry. */
export function dbFault(err: unknown): string {
  const code = pgCode(err);
  const msg = coerceError(err).message;
  if (code === PG.TOO_MANY_CONNECTIONS) return 'no free connection slot (max_connections reached)';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (/Query read timeout/i.test(msg)) return 'no reply within CANON_QUERY_TIMEOUT (connection abandoned)';
  if (/timeout expired|ETIMEDOUT/i.test(msg) || code === 'ETIMEDOUT') return 'connect timed out';
  if (code === PG.QUERY_CANCELED) return 'statement timeout (or cancelled)';
  if (code === PG.LOCK_NOT_AVAILABLE) return 'lock timeout';
  if (code === PG.IDLE_IN_TRANSACTION_TIMEOUT) return 'idle-in-transaction timeout';
  if (code === PG.ADMIN_SHUTDOWN || code === '57P02' || code === PG.CANNOT_CONNECT_NOW)
    return 'server shutting down or starting up';
  if (code === PG.SERIALIZATION_FAILURE || code === PG.DEADLOCK) return 'serialization failure or deadlock';
  if (isConnectionError(err)) return 'connection lost';
  return code ? `database error ${code}` : 'error';
}
