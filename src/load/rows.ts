// A built chunk as COPY rows (CSV, in the column order of COPY_COLUMNS in src/sql/load.ts):
// numbered from the table's current maxima, each event hashed as canon.event_hash does
// (src/load/mirror.ts), its payload in jsonb's canonical text.
import { type Json, jsonbText } from './jsonb.js';
import { eventHash, hashInput, isoMicros } from './mirror.js';
import { type Chunk, runTraceId } from './story.js';

export interface Offsets {
  position: number;
  job: number;
  run: number;
}

export interface ChunkRows {
  entities: string[];
  events: string[];
  jobs: string[];
  runs: string[];
  /** the chunk's new maxima */
  next: Offsets;
}

/** A CSV text field; null is the unquoted empty field, '' the quoted one. */
const q = (s: string | null): string => (s === null ? '' : `"${s.includes('"') ? s.replace(/"/g, '""') : s}"`);
const n = (x: number | null | undefined): string => (x === null || x === undefined ? '' : String(x));
const hex = (b: Buffer | null): string => (b ? `\\x${b.toString('hex')}` : '');

const ts = (us: number | null): string => (us === null ? '' : isoMicros(us));

export function chunkRows(c: Chunk, base: Offsets, creator: string): ChunkRows {
  for (const [i, e] of c.events.entries()) e.position = base.position + i + 1;
  for (const [i, j] of c.jobs.entries()) j.id = base.job + i + 1;
  for (const [i, r] of c.runs.entries()) r.id = base.run + i + 1;
  const byPosition: string[] = new Array(c.events.length);
  const entities: string[] = [];
  for (const ent of c.entities) {
    let prev: Buffer | null = null;
    for (const e of ent.events) {
      const payloadText = jsonbText(typeof e.payload === 'function' ? e.payload() : e.payload);
      const trace = e.run ? runTraceId(e.run) : null;
      const causation = e.causation ? e.causation.position! : null;
      const createdAt = isoMicros(e.t);
      const hash = eventHash(
        prev,
        hashInput({
          entity_id: ent.id,
          seq: e.seq,
          kind: e.kind,
          payloadText,
          correlation_id: ent.id,
          causation_id: causation,
          trace_id: trace,
          actor: e.actor,
          createdAt,
        }),
      );
      byPosition[e.position! - base.position - 1] = [
        e.position,
        q(ent.id),
        e.seq,
        q(e.kind),
        q(payloadText),
        q(ent.id),
        n(causation),
        q(trace),
        q(e.actor),
        createdAt,
        hex(prev),
        hex(hash),
      ].join(',');
      prev = hash;
    }
    entities.push([q(ent.id), isoMicros(ent.createdAt), ent.events.length, hex(prev)].join(','));
  }
  const jobs = c.jobs.map((j) =>
    [
      j.id,
      j.lane,
      q(j.type),
      q(j.ent.id),
      j.status,
      q(jsonbText(j.payload)),
      0,
      j.attempts,
      j.maxAttempts,
      ts(j.runAt),
      q(j.lockedBy),
      ts(j.lockedAt),
      ts(j.heartbeatAt),
      ts(j.leaseExpiresAt),
      q(j.dedupeKey),
      q(j.ent.id),
      q(j.lastRun ? runTraceId(j.lastRun) : null),
      n(j.source.position),
      't',
      '',
      q(j.lastError),
      q(j.lastReason),
      q(creator),
      ts(j.createdAt),
      ts(j.updatedAt),
      ts(j.finishedAt),
    ].join(','),
  );
  const runs = c.runs.map((r) =>
    [
      r.id,
      r.job.id,
      r.attempt,
      r.job.lane,
      q(r.job.type),
      q(r.job.ent.id),
      q(r.worker),
      q(runTraceId(r)),
      q(r.job.ent.id),
      r.status,
      q(r.reason),
      q(r.error),
      ts(r.startedAt),
      ts(r.heartbeatAt),
      ts(r.leaseExpiresAt),
      ts(r.finishedAt),
      n(r.result?.position),
      r.detail === null ? '' : q(jsonbText(r.detail as Json)),
    ].join(','),
  );
  return {
    entities,
    events: byPosition,
    jobs,
    runs,
    next: { position: base.position + c.events.length, job: base.job + c.jobs.length, run: base.run + c.runs.length },
  };
}
