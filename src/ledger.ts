// Appending to the ledger, as a library call and for `canon events append`. Postgres
// assigns seq and hash; this module turns its refusals into clear errors.
import type pg from 'pg';
import { CanonError, conflictError, EXIT, PG, pgCode, usageError } from './errors.js';
import { LEDGER_SQL } from './sql/ledger.js';

export interface AppendInput {
  entityId: string;
  kind: string;
  payload?: Record<string, unknown>;
  expectedSeq?: number;
  correlationId?: string;
  causationId?: number;
  traceId?: string;
  actor?: string;
}

export interface LedgerEvent {
  position: number;
  entity_id: string;
  seq: number;
  kind: string;
  payload: Record<string, unknown>;
  correlation_id: string;
  causation_id: number | null;
  trace_id: string | null;
  actor: string;
  created_at: Date;
  hash?: string;
}

const REQUIRED = /^job\.([a-z][a-z0-9_]*)\.required$/;

/** `job.<type>.required`: the event a decision (or an operator's retry) appends for each job it requires. */
export const requiredKind = (type: string): string => `job.${type}.required`;

/** The job type a `job.<type>.required` event requires; undefined for every other kind. */
export function requiredType(kind: string): string | undefined {
  return REQUIRED.exec(kind)?.[1];
}

export async function appendEvent(db: pg.Pool | pg.ClientBase, input: AppendInput): Promise<LedgerEvent> {
  try {
    const r = await db.query(LEDGER_SQL.append, [
      input.entityId,
      input.kind,
      JSON.stringify(input.payload ?? {}),
      input.expectedSeq ?? null,
      input.correlationId ?? null,
      input.causationId ?? null,
      input.traceId ?? null,
      input.actor ?? null,
    ]);
    return r.rows[0];
  } catch (e) {
    throw ledgerError(e);
  }
}

export function ledgerError(e: unknown): unknown {
  const code = pgCode(e);
  const msg = (e as Error).message;
  if (code === PG.CANON_CONFLICT) return conflictError(msg);
  if (code === PG.CHECK_VIOLATION) return usageError(`the event was refused by a check: ${msg}`);
  if (code === PG.UNTRANSLATABLE || code === PG.CHARACTER_NOT_IN_REPERTOIRE || code === PG.INVALID_TEXT)
    return usageError(`the payload cannot be stored: ${msg}`);
  if (code === PG.PROGRAM_LIMIT) return new CanonError(`the event is too large for Postgres: ${msg}`, EXIT.USAGE);
  return e;
}

export async function history(db: pg.Pool | pg.ClientBase, entityId: string): Promise<LedgerEvent[]> {
  return (await db.query(LEDGER_SQL.history, [entityId])).rows;
}
