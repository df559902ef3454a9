// The values Postgres computes that `canon load` must compute itself: it writes rows in bulk
// with COPY and the triggers off, so there is no function call per row to ask. Each function
// here is the TypeScript twin of one SQL rule, and test/load-mirror.test.ts checks each pair
// on random inputs against the database: change one side and that test fails until the
// other follows.
import { createHash } from 'node:crypto';

const MICROS = 1_000_000;

/** Microseconds since the epoch as canon.event_hash prints them: YYYY-MM-DDTHH:MI:SS.USZ (UTC). */
export function isoMicros(us: number): string {
  const iso = new Date(Math.floor(us / 1000)).toISOString();
  return `${iso.slice(0, 19)}.${String(us % MICROS).padStart(6, '0')}Z`;
}

/** The fields canon.event_hash joins with chr(31), in its order (null causation and trace as ''). */
export function hashInput(e: {
  entity_id: string;
  seq: number;
  kind: string;
  payloadText: string;
  correlation_id: string;
  causation_id: number | null;
  trace_id: string | null;
  actor: string;
  createdAt: string;
}): string {
  return [
    e.entity_id,
    String(e.seq),
    e.kind,
    e.payloadText,
    e.correlation_id,
    e.causation_id === null ? '' : String(e.causation_id),
    e.trace_id ?? '',
    e.actor,
    e.createdAt,
  ].join('\u001f');
}

/** canon.event_hash: sha256 over the previous event's hash and the joined fields. */
export function eventHash(prev: Buffer | null, input: string): Buffer {
  const h = createHash('sha256');
  if (prev) h.update(prev);
  return h.update(input, 'utf8').digest();
}

/** A run's trace id as the claim writes it: `<worker id>-<job id>-<attempt>`. */
export const traceId = (workerId: string, jobId: number, attempt: number): string => `${workerId}-${jobId}-${attempt}`;

/**
 * canon.backoff_seconds: exponential from the type's base, capped at its maximum, times a
 * jitter between one half and one; `unit` is the random draw in [0, 1).
 */
export function backoffSeconds(
  spec: { baseSeconds: number; maxSeconds: number },
  attempts: number,
  unit: number,
): number {
  return Math.min(spec.maxSeconds, spec.baseSeconds * 2 ** Math.max(attempts - 1, 0)) * (0.5 + unit / 2);
}

/** Postgres' text form of a timestamptz in UTC, as format('%s', ts) prints it (in canon.rescue_stuck's error). */
export function pgTime(us: number): string {
  const iso = new Date(Math.floor(us / 1000)).toISOString();
  const frac = String(us % MICROS)
    .padStart(6, '0')
    .replace(/0+$/, '');
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac ? `.${frac}` : ''}+00`;
}
