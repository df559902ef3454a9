// Flags: reading, changing, rolling back and the kill switch. The state lives in canon.flags;
// every change becomes a canon.flag_changes row written by the history trigger, whoever made
// it (this module, the tick, or plain SQL). Whether a flag is on for an entity is decided in
// Postgres (canon.flag_is_on), where the decider asks.
import { FLAGS_SQL } from '../sql/flags.js';
import { type Queryable, steer, type Who } from './common.js';
import type { GuardVerdict } from './guard.js';

export interface FlagState {
  enabled: boolean;
  rollout_percent: number;
  strategy: 'all' | 'gradual';
  killed?: boolean;
}

export interface RunningRollout {
  id: number;
  current_percent: number;
  step_percent: number;
  every_seconds: number;
  until_percent: number;
  guard: string | null;
  next_step_at: string;
  step_started_at: string;
  last_good_percent: number | null;
  last_verdict: GuardVerdict | null;
  started_by: string;
  started_at: string;
}

export interface Flag extends FlagState {
  name: string;
  description: string;
  killed_at: Date | null;
  killed_by: string | null;
  created_at: Date;
  updated_at: Date;
  updated_by: string;
  held_jobs: number;
  rollout: RunningRollout | null;
}

export interface FlagChange {
  id: number;
  at: Date;
  actor: string;
  source: string;
  reason: string | null;
  before: FlagState | null;
  after: FlagState;
  undoes: number | null;
}

export type FlagAction = 'enable' | 'disable' | 'rollout' | 'kill';

export interface ChangeResult {
  flag: Flag;
  change_id: number | null; // null when the flag already was in that state
  rollout_stopped: boolean;
  held_jobs: number;
  actor: string;
  reason: string | null;
}

export const FLAG_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,99}$/;

export async function listFlags(db: Queryable): Promise<Flag[]> {
  return (await db.query(FLAGS_SQL.list)).rows;
}

export async function getFlag(db: Queryable, name: string): Promise<Flag> {
  return steer(async () => (await db.query(FLAGS_SQL.get, [name])).rows[0]);
}

export async function createFlag(db: Queryable, name: string, description: string, who: Who): Promise<ChangeResult> {
  const changeId = await steer(
    async () =>
      (await db.query(FLAGS_SQL.create, [name, description, who.actor, who.reason ?? null])).rows[0].change_id,
  );
  return {
    flag: await getFlag(db, name),
    change_id: changeId,
    rollout_stopped: false,
    held_jobs: 0,
    actor: who.actor,
    reason: who.reason ?? null,
  };
}

export async function changeFlag(
  db: Queryable,
  name: string,
  action: FlagAction,
  who: Who,
  percent?: number,
): Promise<ChangeResult> {
  const r = await steer(
    async () =>
      (await db.query(FLAGS_SQL.change, [name, action, percent ?? null, who.actor, who.reason ?? null])).rows[0],
  );
  return { flag: await getFlag(db, name), ...r, actor: who.actor, reason: who.reason ?? null };
}

/** How many queued jobs `kill` would hold right now. */
export async function killPreview(db: Queryable, name: string): Promise<number> {
  return steer(async () => (await db.query(FLAGS_SQL.killPreview, [name])).rows[0].jobs);
}

export interface RollbackResult extends ChangeResult {
  undid: number;
  restored: FlagState;
}

export async function rollbackFlag(db: Queryable, name: string, who: Who): Promise<RollbackResult> {
  const r = await steer(
    async () => (await db.query(FLAGS_SQL.rollback, [name, who.actor, who.reason ?? null])).rows[0],
  );
  return { flag: await getFlag(db, name), ...r, held_jobs: 0, actor: who.actor, reason: who.reason ?? null };
}

export async function releaseFlag(db: Queryable, name: string, who: Who): Promise<number> {
  return steer(async () => (await db.query(FLAGS_SQL.release, [name, who.actor, who.reason ?? null])).rows[0].released);
}

export async function flagHistory(db: Queryable, name: string, limit = 50): Promise<FlagChange[]> {
  return steer(async () => (await db.query(FLAGS_SQL.history, [name, limit])).rows);
}
