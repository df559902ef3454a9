// Ledger audit: the first broken link of each entity's hash chain, and entity heads that do
// not match their last event.
import type pg from 'pg';
import { AUDIT_SQL } from './sql/audit.js';

export interface ChainBreak {
  entity_id: string;
  seq: number;
  problem: 'seq_gap' | 'prev_hash_mismatch' | 'hash_mismatch' | 'head_mismatch';
  expected_hash: string | null;
  actual_hash: string | null;
}

export interface AuditResult {
  ok: boolean;
  events: number;
  entities: number;
  breaks: ChainBreak[];
}

export async function verifyChains(db: pg.Pool | pg.ClientBase, entityId?: string, limit = 1000): Promise<AuditResult> {
  const breaks: ChainBreak[] = (await db.query(AUDIT_SQL.breaks, [entityId ?? null, limit])).rows;
  const heads = (await db.query(AUDIT_SQL.heads, [entityId ?? null, limit])).rows;
  for (const h of heads) {
    if (!breaks.some((b) => b.entity_id === h.entity_id)) {
      breaks.push({ entity_id: h.entity_id, seq: h.head_seq, problem: 'head_mismatch', expected_hash: h.last_hash, actual_hash: h.head_hash });
    }
  }
  const c = (await db.query(AUDIT_SQL.counts, [entityId ?? null])).rows[0];
  return { ok: breaks.length === 0, events: Number(c.events), entities: Number(c.entities), breaks };
}
