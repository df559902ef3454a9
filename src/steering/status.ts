// Everything steering holds back, in one call for `canon health` and `canon alerts`: paused
// types, open or half-open breakers, jobs held by a kill, running rollouts, and automatic
// rollbacks of the last 24 hours.
import { trippedBreakers } from './breakers.js';
import type { Queryable } from './common.js';
import { heldJobs } from './flags.js';
import { pausedTypes } from './pause.js';
import { rolloutAlerts, runningRollouts } from './rollout.js';

export async function steeringStatus(db: Queryable) {
  const [paused, breakers, held, rollouts, autoRollbacks] = await Promise.all([
    pausedTypes(db),
    trippedBreakers(db),
    heldJobs(db),
    runningRollouts(db),
    rolloutAlerts(db),
  ]);
  return { paused, breakers, held, rollouts, auto_rollbacks: autoRollbacks };
}
