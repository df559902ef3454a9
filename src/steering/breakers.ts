// Circuit breakers per execution job type. The accounting runs in Postgres as runs end, so
// every worker shares one state; the half-open probe is chosen by the claim. This module reads that state and lets an operator force it.
import { BREAKERS_SQL } from '../sql/breakers.js';
import { type Queryable, steer, type Who } from './common.js';

export interface Breaker {
  job_type: string;
  state: 'closed' | 'open' | 'half_open';
  failure_count: number;
  threshold: number;
  cooldown_seconds: number;
  opened_at: Date | null;
  next_attempt_at: Date | null;
  probe_job_id: number | null;
  reason: string | null;
  updated_at: Date | null;
  updated_by: string | null;
  paused: boolean;
  queued: number;
}

export async function listBreakers(db: Queryable): Promise<Breaker[]> {
  return (await db.query(BREAKERS_SQL.list)).rows;
}

/** Forces a breaker open (for `seconds`, default the type's cooldown; then a probe decides) or closed. */
export async function forceBreaker(
  db: Queryable,
  jobType: string,
  state: 'open' | 'closed',
  who: Who,
  seconds?: number,
) {
  return steer(
    async () =>
      (await db.query(BREAKERS_SQL.force, [jobType, state, seconds ?? null, who.actor, who.reason ?? null])).rows[0],
  );
}
