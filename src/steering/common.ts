// What every steering module shares: the database handle type, who acts and why, and the
// mapping of the steering functions' refusals (SQLSTATE CN005/CN006) to usage errors.
import type pg from 'pg';
import { PG, pgCode, usageError } from '../errors.js';

export type Queryable = pg.Pool | pg.ClientBase;

/** Who changes something and why; both land in flag_changes or the steering log. */
export interface Who {
  actor: string;
  reason?: string;
}

/** A refusal of a steering function is bad input: exit 2, one line, nothing changed. */
export function steeringError(e: unknown): unknown {
  const code = pgCode(e);
  if (code === PG.CANON_BAD_INPUT || code === PG.CANON_NOT_FOUND || code === PG.CHECK_VIOLATION) {
    return usageError((e as Error).message);
  }
  return e;
}

export async function steer<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw steeringError(e);
  }
}
