// Database faults as a worker meets them: one log line when a fault starts (or turns into a
// different kind), silence while the same fault repeats under backoff, one line when calls
// succeed again. A worker retries every database call; its log says what is wrong once.
import { openDb } from '../db/connect.js';
import { describeUrl } from '../db/url.js';
import { CanonError, coerceError, dbFault, isConnectionError } from '../errors.js';
import type { Logger } from '../pipeline/define.js';

/** Capped exponential backoff with jitter: 200 ms, 400 ms, ... up to 10 s. */
export function backoffMs(attempt: number): number {
  return Math.min(10_000, 200 * 2 ** Math.min(attempt, 16)) * (0.5 + Math.random() / 2);
}

export class FaultLog {
  private kind?: string;
  private since = 0;
  private failures = 0;
  /** the calls (claim, heartbeat, completion, ...) that failed and have not succeeded since */
  private readonly failing = new Set<string>();

  constructor(private readonly log: Logger) {}

  /** A database call failed and will be retried. */
  failed(where: string, err: unknown): void {
    this.failures++;
    this.failing.add(where);
    const kind = dbFault(err);
    if (kind === this.kind) return;
    if (this.kind === undefined) this.since = Date.now();
    this.kind = kind;
    this.log.warn(`database call failed, retrying with backoff: ${kind}`, {
      during: where,
      error: coerceError(err).message.split('\n')[0],
    });
  }

  /**
   * A call succeeded (or stopped being retried). The fault ends when every call that failed
   * during it has: one call that happens to need no lock does not end a lock timeout.
   */
  cleared(where: string): void {
    if (!this.failing.delete(where) || this.failing.size > 0 || this.kind === undefined) return;
    this.log.info('database calls succeed again', {
      after_ms: Date.now() - this.since,
      failed_calls: this.failures,
    });
    this.kind = undefined;
    this.failures = 0;
  }
}

/**
 * Waits until the database accepts a connection, for `canon work` started before Postgres (a
 * host booting, a failover): one line per kind of failure, retries with backoff. Faults that
 * waiting cannot fix (a wrong password, a missing database, a bad URL) still end the command.
 */
export async function waitForDatabase(log: Logger): Promise<void> {
  let last: string | undefined;
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      const db = await openDb({ max: 1, applicationName: 'canon wait' });
      await db.close().catch(() => {});
      if (attempt > 0)
        log.info('database answers: starting', {
          database: describeUrl(db.target.url),
          attempts: attempt + 1,
          waited_ms: Date.now() - started,
        });
      return;
    } catch (e) {
      const cause = e instanceof CanonError ? e.cause : e;
      if (!isConnectionError(cause)) throw e;
      const kind = dbFault(cause);
      if (kind !== last) {
        last = kind;
        log.warn(
          `waiting for the database: ${coerceError(e).message}; retrying with backoff (--fail-fast exits instead)`,
        );
      }
      await new Promise((r) => setTimeout(r, backoffMs(attempt)));
    }
  }
}
