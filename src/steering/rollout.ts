// Guarded auto-rollout. `canon flags rollout <flag> --auto` applies the first step at once
// and records the plan; `canon tick` calls advanceRollouts(), which moves every due rollout
// one step (or completes it, waits for evidence, or rolls it back when its guard fails). All
// of it is canon.advance_rollouts() in one statement, so overlapping ticks cannot double-step.
import { ROLLOUT_SQL } from '../sql/flags.js';
import { type Queryable, steer, type Who } from './common.js';
import type { FlagState } from './flags.js';
import { formatGuard, type GuardCondition, type GuardVerdict } from './guard.js';

export interface AutoRolloutPlan {
  /** percent of the first step; default: the flag's current percent plus one step */
  start?: number;
  step: number;
  everySeconds: number;
  until: number;
  guard?: GuardCondition[];
}

export interface RolloutStart {
  rollout_id: number;
  change_id: number | null;
  from_percent: number;
  to_percent: number;
}

export interface RolloutStep {
  flag: string;
  rollout_id: number;
  /** advanced: one step up; completed: reached --until and passed; waiting: not enough runs to judge;
   *  rolled_back: the guard failed, the flag went back to its last good percentage; stopped: the
   *  flag was changed outside the rollout (plain SQL) */
  action: 'advanced' | 'completed' | 'waiting' | 'rolled_back' | 'stopped';
  from_percent: number;
  to_percent: number;
  reason: string;
  verdict: GuardVerdict | null;
}

export interface RolloutAlert {
  id: number;
  flag: string;
  /** a Date from pg, a string from inside jsonb (the health snapshot) */
  at: Date | string;
  actor: string;
  reason: string;
  from_percent: number;
  to_percent: number;
}

export async function startAutoRollout(
  db: Queryable,
  name: string,
  plan: AutoRolloutPlan,
  who: Who,
): Promise<RolloutStart> {
  const guard = plan.guard?.length ? plan.guard : null;
  return steer(
    async () =>
      (
        await db.query(ROLLOUT_SQL.start, [
          name,
          plan.start ?? null,
          plan.step,
          plan.everySeconds,
          plan.until,
          guard ? formatGuard(guard) : null,
          JSON.stringify(guard ?? []),
          who.actor,
          who.reason ?? null,
        ])
      ).rows[0],
  );
}

/** Ends the flag's auto-rollout and leaves the flag where it is; returns that percentage. */
export async function stopAutoRollout(db: Queryable, name: string, who: Who): Promise<number> {
  return steer(async () => (await db.query(ROLLOUT_SQL.stop, [name, who.actor, who.reason ?? null])).rows[0].percent);
}

/**
 * One pass over the due rollouts (called by `canon tick`). Run it outside a long
 * transaction: each flag's row lock is held until the statement's transaction ends.
 */
export async function advanceRollouts(client: Queryable): Promise<RolloutStep[]> {
  return (await client.query(ROLLOUT_SQL.advance)).rows;
}

const effective = (s: FlagState | null): number => (s?.enabled ? s.rollout_percent : 0);

/** A row of ROLLOUT_SQL.autoRollbacks */
export interface AutoRollbackRow {
  id: number;
  flag: string;
  at: Date | string;
  actor: string;
  reason: string;
  before: FlagState | null;
  after: FlagState;
}

/** The automatic rollbacks (rows of ROLLOUT_SQL.autoRollbacks) with the percentages they went from and to. */
export function rolloutAlertsOf(rows: AutoRollbackRow[]): RolloutAlert[] {
  return rows.map(({ before, after, ...r }) => ({
    ...r,
    from_percent: effective(before),
    to_percent: effective(after),
  }));
}
