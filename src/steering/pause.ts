// Pausing a job type: claims skip it (canon.claim_runs checks job_types.paused), its queued
// jobs wait with their attempts untouched, and resuming wakes the lane's workers.
import { PAUSE_SQL } from '../sql/pause.js';
import { type Queryable, steer, type Who } from './common.js';

export interface PauseResult {
  changed: boolean; // false when the type already was in that state
  type: string;
  lane: string;
  paused: boolean;
  paused_at: string | null;
  paused_by: string | null;
  pause_reason: string | null;
  queued: number;
}

export async function setPaused(db: Queryable, jobType: string, paused: boolean, who: Who): Promise<PauseResult> {
  return steer(
    async () => (await db.query(PAUSE_SQL.set, [jobType, paused, who.actor, who.reason ?? null])).rows[0].result,
  );
}
