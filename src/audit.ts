// Ledger audit: the first broken link of each entity's hash chain, entity heads that do not
// match their last event, and the register of edits that were refused or that went through
// with the triggers bypassed. `tamperAlerts` is what `canon alerts` calls.
import type pg from 'pg';
import { AUDIT_SQL } from './sql/audit.js';

type Queryable = pg.Pool | pg.ClientBase;

export interface ChainBreak {
  entity_id: string;
  /** the position in the chain (1..n) where the entity's history stops verifying */
  seq: number;
  /** the seq stored on the row found there (differs from seq for a seq_gap) */
  found_seq?: number;
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

const CHUNK_ENTITIES = 20_000;

/** A row of AUDIT_SQL.breaks */
export interface BreakRow {
  entity_id: string;
  seq: number;
  found_seq: number;
  problem: ChainBreak['problem'];
  expected_hash: string | null;
  actual_hash: string | null;
}

/** A row of AUDIT_SQL.heads */
export interface HeadRow {
  entity_id: string;
  head_seq: number;
  head_hash: string | null;
  last_seq: number | null;
  last_hash: string | null;
}

/** Adds the first broken link of each entity, and a head mismatch for an entity whose chain verifies but whose head does not name its last event. */
export function addBreaks(breaks: ChainBreak[], found: BreakRow[], heads: HeadRow[]): ChainBreak[] {
  for (const b of found) {
    const out: ChainBreak = {
      entity_id: b.entity_id,
      seq: b.seq,
      problem: b.problem,
      expected_hash: b.expected_hash,
      actual_hash: b.actual_hash,
    };
    if (b.found_seq !== b.seq) out.found_seq = b.found_seq;
    breaks.push(out);
  }
  const broken = new Set(breaks.map((b) => b.entity_id));
  for (const h of heads) {
    if (!broken.has(h.entity_id))
      breaks.push({
        entity_id: h.entity_id,
        seq: h.head_seq,
        problem: 'head_mismatch',
        expected_hash: h.last_hash,
        actual_hash: h.head_hash,
      });
  }
  return breaks;
}

/**
 * All entities, one (the foundation tests' form), or a list (the provenance debugger's). The
 * whole ledger is checked in chunks of entities, reporting progress; run it inside one
 * snapshot (REPEATABLE READ) so that the chunks describe one moment.
 */
export async function verifyChains(
  db: Queryable,
  entities?: string | string[],
  limit = 1000,
  onProgress?: (done: number, total: number) => void,
  chunk = CHUNK_ENTITIES,
): Promise<AuditResult> {
  const id = entities === undefined ? null : Array.isArray(entities) ? entities : [entities];
  const breaks: ChainBreak[] = [];
  const check = async (lo: string | null, hi: string | null) => {
    const found = (await db.query(AUDIT_SQL.breaks, [id, limit, lo, hi])).rows as BreakRow[];
    addBreaks(breaks, found, (await db.query(AUDIT_SQL.heads, [id, limit, lo, hi])).rows as HeadRow[]);
  };
  if (id) await check(null, null);
  else {
    const total = Number((await db.query(AUDIT_SQL.entityCount)).rows[0].n);
    let lo: string | null = null;
    for (let done = 0; breaks.length < limit; ) {
      const hi: string | null = (await db.query(AUDIT_SQL.chunkEnd, [lo, chunk - 1])).rows[0]?.id ?? null;
      await check(lo, hi);
      done = hi === null ? total : Math.min(total, done + chunk);
      onProgress?.(done, total);
      if (hi === null) break;
      lo = hi;
    }
  }
  breaks.sort((a, b) => (a.entity_id < b.entity_id ? -1 : a.entity_id > b.entity_id ? 1 : 0));
  const c = (await db.query(AUDIT_SQL.counts, [id])).rows[0];
  return {
    ok: breaks.length === 0,
    events: Number(c.events),
    entities: Number(c.entities),
    breaks: breaks.slice(0, limit),
  };
}

export interface LedgerEditRegister {
  /** UPDATE/DELETE/TRUNCATE statements on the ledger that were refused, ever */
  refused_total: number;
  /** statements that edited the ledger with the triggers bypassed (session_replication_role = replica) */
  bypass_total: number;
  last: { at: string; role: string; operation: string; bypassed: boolean; pid: number } | null;
}

/** A row of AUDIT_SQL.register (from pg, or from jsonb inside the health snapshot) */
export interface RegisterRow {
  refused_total: number | string;
  bypass_total: number | string;
  last_at: string | Date | null;
  last_role: string;
  last_op: string;
  last_bypass: boolean | null;
  last_pid: number;
}

export async function ledgerEditRegister(db: Queryable): Promise<LedgerEditRegister> {
  return ledgerEditRegisterOf((await db.query(AUDIT_SQL.register)).rows[0]);
}

export function ledgerEditRegisterOf(r: RegisterRow): LedgerEditRegister {
  return {
    refused_total: Number(r.refused_total),
    bypass_total: Number(r.bypass_total),
    last: r.last_at
      ? {
          at: new Date(r.last_at).toISOString(),
          role: r.last_role,
          operation: r.last_op,
          bypassed: !!r.last_bypass,
          pid: r.last_pid,
        }
      : null,
  };
}

export interface TamperAlert {
  /** CRITICAL when a new edit bypassed the triggers (the ledger may have changed), WARNING for new refused attempts */
  severity: 'ok' | 'warning' | 'critical';
  refused_new: number;
  bypass_new: number;
  register: LedgerEditRegister;
  message: string;
}

/** New (unacknowledged) edits of the ledger, for `canon alerts`. Acknowledge with `canon audit attempts --ack`. */
export async function tamperAlerts(db: Queryable): Promise<TamperAlert> {
  return tamperAlertOf(await ledgerEditRegister(db), (await db.query(AUDIT_SQL.acknowledged)).rows);
}

/** The alert from the register and the rows of AUDIT_SQL.acknowledged (what `--ack` last saw). */
export function tamperAlertOf(
  register: LedgerEditRegister,
  acknowledged: { key: string; value: string | number }[],
): TamperAlert {
  const ack = new Map<string, number>(acknowledged.map((r) => [r.key, Number(r.value)]));
  const refused_new = Math.max(0, register.refused_total - (ack.get('ledger_refused_ack') ?? 0));
  const bypass_new = Math.max(0, register.bypass_total - (ack.get('ledger_bypass_ack') ?? 0));
  const severity = bypass_new > 0 ? 'critical' : refused_new > 0 ? 'warning' : 'ok';
  const last = register.last
    ? `; last: ${register.last.operation} by ${register.last.role} at ${register.last.at}${register.last.bypassed ? ' with triggers bypassed' : ''} (pid ${register.last.pid})`
    : '';
  const message =
    severity === 'ok'
      ? 'no new edit attempts on the ledger'
      : [
          bypass_new ? `${bypass_new} ledger edit(s) with triggers bypassed (run canon audit verify)` : '',
          refused_new ? `${refused_new} refused ledger edit attempt(s)` : '',
        ]
          .filter(Boolean)
          .join(', ') + last;
  return { severity, refused_new, bypass_new, register, message };
}

/** Marks everything in the register as seen, so alerts fire only on later attempts. */
export async function acknowledgeTamper(db: Queryable, actor: string): Promise<LedgerEditRegister> {
  const register = await ledgerEditRegister(db);
  await db.query(AUDIT_SQL.acknowledge, [String(register.refused_total), String(register.bypass_total), actor]);
  return register;
}
