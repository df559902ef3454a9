// status_derived: reading one entity's row, and checking every row against a recomputation
// from scratch. The rows themselves are kept by triggers (migrations/repeatable/status.sql); nothing here writes
// them except `fix`, which asks the same SQL function the triggers use.
import type pg from 'pg';
import { STATUS_COLUMNS, STATUS_SQL } from '../sql/status.js';
import { inSnapshot } from './snapshot.js';

type Queryable = pg.Pool | pg.ClientBase;

export type DerivedStatus = 'pending' | 'in_progress' | 'completed' | 'failed' | 'blocked';

export interface EntityStatus {
  entity_id: string;
  status: DerivedStatus;
  health_score: number;
  jobs_total: number;
  jobs_queued: number;
  jobs_running: number;
  jobs_blocked: number;
  jobs_succeeded: number;
  jobs_failed: number;
  jobs_cancelled: number;
  jobs_dead: number;
  runs_total: number;
  runs_running: number;
  runs_succeeded: number;
  runs_failed: number;
  runs_cancelled: number;
  updated_at: Date;
  head_seq: number;
  head_hash: string | null;
}

/** One primary-key read. */
export async function readStatus(db: Queryable, entityId: string): Promise<EntityStatus | undefined> {
  const row = (await db.query(STATUS_SQL.read, [entityId])).rows[0];
  return row ? { ...row, health_score: Number(row.health_score) } : undefined;
}

export interface StatusDifference {
  entity_id: string;
  /** the fields that differ, stored → expected (a missing row has stored null) */
  fields: Record<string, { stored: unknown; expected: unknown }>;
  stored: Record<string, unknown> | null;
  expected: Record<string, unknown> | null;
}

export interface StatusVerification {
  ok: boolean;
  entities: number;
  differences: StatusDifference[];
  fixed: number;
}

function diffFields(
  stored: Record<string, unknown> | null,
  expected: Record<string, unknown> | null,
): StatusDifference['fields'] {
  const out: StatusDifference['fields'] = {};
  for (const c of STATUS_COLUMNS) {
    const s = stored ? stored[c] : null;
    const e = expected ? expected[c] : null;
    if (String(s) !== String(e)) out[c] = { stored: s, expected: e };
  }
  return out;
}

/**
 * Compares every stored row with the recomputation, both read from one snapshot so that
 * concurrent work cannot show up as a difference. With fix, the differing entities are
 * refreshed through canon.refresh_entity_status (the triggers' own path).
 */
export async function verifyStatus(pool: pg.Pool, opts: { fix?: boolean } = {}): Promise<StatusVerification> {
  const { entities, differences } = await inSnapshot(pool, async (c) => ({
    entities: Number((await c.query(STATUS_SQL.count)).rows[0].n),
    differences: (await c.query(STATUS_SQL.differences)).rows.map(
      (r): StatusDifference => ({
        entity_id: r.entity_id,
        fields: diffFields(r.stored, r.expected),
        stored: r.stored,
        expected: r.expected,
      }),
    ),
  }));
  let fixed = 0;
  if (opts.fix && differences.length) {
    const ids = differences.filter((d) => d.stored !== null).map((d) => d.entity_id);
    await pool.query(STATUS_SQL.refresh, [ids]);
    fixed = ids.length;
  }
  return { ok: differences.length === 0, entities, differences, fixed };
}
