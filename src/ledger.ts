// Appending to the ledger, as a library call and for `canon events append`. Postgres
// assigns seq and hash; this module turns its refusals into clear errors.
import type pg from 'pg';
import { canonTypes } from './db/pg-types.js';
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

/**
 * Appends one event through `canon.append_event`. `db` is a pool, or a client inside the
 * caller's own transaction: the event, and the decision job it queues, then commit or roll
 * back with the caller's writes. A stale `expectedSeq` throws a CanonError with exit code
 * EXIT.CONFLICT; a payload Postgres refuses, one with EXIT.USAGE.
 */
export async function appendEvent(db: pg.Pool | pg.ClientBase, input: AppendInput): Promise<LedgerEvent> {
  try {
    const r = await db.query({
      text: LEDGER_SQL.append,
      values: [
        input.entityId,
        input.kind,
        JSON.stringify(input.payload ?? {}),
        input.expectedSeq ?? null,
        input.correlationId ?? null,
        input.causationId ?? null,
        input.traceId ?? null,
        input.actor ?? null,
      ],
      types: canonTypes,
    });
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

/** An entity's events in order (seq 1 first); empty for an entity canon has never seen. */
export async function history(db: pg.Pool | pg.ClientBase, entityId: string): Promise<LedgerEvent[]> {
  return (await db.query({ text: LEDGER_SQL.history, values: [entityId], types: canonTypes })).rows;
}
