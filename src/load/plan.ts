// What `canon load` writes: the counts (the seed TaskDB guide's dataset by default), the mix
// of outcomes, and how the entities are cut into chunks of one transaction each.
import { usageError } from '../errors.js';
import { share } from './rng.js';

export interface LoadOptions {
  entities: number;
  jobs: number;
  runs: number;
  events: number;
  /** entities are created over this many days up to now */
  days: number;
  seed: string;
  prefix: string;
  /** entities per transaction; 0 picks about 100,000 events' worth */
  chunk: number;
}

// The seed's Ola 3 dataset: 100k tasks, 1M runs, 10M events. canon has jobs and runs where
// the seed had runs; runs are 5 % more than jobs because failed attempts are runs of their own.
export const DEFAULTS: Omit<LoadOptions, 'seed' | 'prefix' | 'chunk'> = {
  entities: 100_000,
  jobs: 1_000_000,
  runs: 1_050_000,
  events: 10_000_000,
  days: 30,
};

/** How an entity's story ends. Rates are per entity; each rare outcome appears at least once. */
export const FATES = {
  dead_max_attempts: 0.004, // every attempt failed: max_attempts_exceeded
  dead_ttl: 0.002, // the last attempt's worker vanished: rescued with no attempts left, ttl_exceeded
  dead_handler: 0.002, // the handler failed permanently: handler_error
  dead_precondition: 0.002, // the history lacked what the handler needs: precondition_failed
  stuck: 0.0005, // running, the heartbeat older than the type's TTL (tick rescues it)
  queued_exec: 0.001, // an execution job waiting in the queue, ready
  queued_decision: 0.0005, // a document just appended, its decision job waiting
  retry_scheduled: 0.0005, // failed once, queued again with a backoff
} as const;
export type Fate = keyof typeof FATES | 'completed';

/** Core events, jobs and runs of a completed entity (created, 3 × required + succeeded; 4 decisions, 3 executions). */
export const CORE_PER_ENTITY = 7;

export function scaledOptions(scale: number, base = DEFAULTS): Omit<LoadOptions, 'seed' | 'prefix' | 'chunk'> {
  const r = (n: number) => Math.max(1, Math.round(n * scale));
  return {
    entities: r(base.entities),
    jobs: r(base.jobs),
    runs: r(base.runs),
    events: r(base.events),
    days: base.days,
  };
}

/** Refuses counts the story cannot fit: every entity needs its pipeline, every extra decision an event. */
export function checkOptions(o: LoadOptions): void {
  if (o.entities < 10)
    throw usageError(`--entities must be at least 10 (the mix needs room for its rare outcomes), got ${o.entities}`);
  const minJobs = CORE_PER_ENTITY * o.entities;
  if (o.jobs < minJobs)
    throw usageError(
      `--jobs must be at least ${minJobs.toLocaleString('en-US')} (${CORE_PER_ENTITY} per entity: 4 decisions and protect, tsa, anchor), got ${o.jobs.toLocaleString('en-US')}`,
    );
  // each job beyond the pipeline is a decision about a burst of at least one event
  const minEvents = CORE_PER_ENTITY * o.entities + (o.jobs - minJobs);
  if (o.events < minEvents)
    throw usageError(
      `--events must be at least ${minEvents.toLocaleString('en-US')} for ${o.jobs.toLocaleString('en-US')} jobs (each decision beyond the pipeline reads at least one new event), got ${o.events.toLocaleString('en-US')}`,
    );
  if (o.runs < o.jobs)
    throw usageError(
      `--runs must be at least --jobs (${o.jobs.toLocaleString('en-US')}): every finished job has a run`,
    );
  if (!/^[A-Za-z][A-Za-z0-9_.:-]{0,40}$/.test(o.prefix))
    throw usageError(`--prefix must be a letter then up to 40 letters, digits or _ . : -, got "${o.prefix}"`);
}

export interface ChunkPlan {
  chunks: number;
  /** ids of chunk i's entities are [first, first + count) */
  entities(i: number): { first: number; count: number };
  budget(i: number): { events: number; jobs: number; runs: number };
  /** how many entities of chunk i end each rare way */
  fates(i: number): Record<keyof typeof FATES, number>;
}

/** Chunks of about 100,000 events: one COPY per table and one commit each, small enough to resume cheaply. */
export function chunkPlan(o: LoadOptions): ChunkPlan {
  const perEntity = o.events / o.entities;
  const size = o.chunk > 0 ? o.chunk : Math.max(20, Math.min(2000, Math.round(100_000 / perEntity)));
  const chunks = Math.ceil(o.entities / size);
  const totals = Object.fromEntries(
    Object.entries(FATES).map(([f, rate]) => [f, Math.max(1, Math.round(rate * o.entities))]),
  ) as Record<keyof typeof FATES, number>;
  return {
    chunks,
    entities: (i) => ({ first: Math.floor((i * o.entities) / chunks), count: share(o.entities, chunks, i) }),
    budget: (i) => ({
      events: share(o.events, chunks, i),
      jobs: share(o.jobs, chunks, i),
      runs: share(o.runs, chunks, i),
    }),
    fates: (i) =>
      Object.fromEntries(Object.entries(totals).map(([f, n]) => [f, share(n, chunks, i)])) as Record<
        keyof typeof FATES,
        number
      >,
  };
}

export function entityId(o: Pick<LoadOptions, 'prefix' | 'entities'>, index: number): string {
  return `${o.prefix}-${String(index + 1).padStart(Math.max(6, String(o.entities).length), '0')}`;
}
