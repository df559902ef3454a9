// What a pipeline module is: the user's job types, the pure authority, the handlers and the
// best-effort projections. Modules are validated with zod when loaded, so a mistake in one
// is reported as one line naming the file and the field, before any job runs.
import { z } from 'zod';
import type { LedgerEvent } from '../ledger.js';
import type { AnchorClaim, TimestampClaim } from '../proof/provenance-format.js';

/** The handler failed but may succeed later: retried with backoff until attempts run out. */
export class RetryableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RetryableError';
  }
}
/** Retrying cannot help: the job is dead at once with reason handler_error. */
export class PermanentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentError';
  }
}
/** A precondition of the job does not hold (bad input in the history): dead at once, reason precondition_failed. */
export class PreconditionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PreconditionError';
  }
}

export interface Entity {
  id: string;
  events: LedgerEvent[];
}

/**
 * The flags as they apply to one entity. A pipeline reads only the flags it declares (canon
 * reads no others for its decisions), so `definePipeline` narrows `name` to their names.
 */
export interface FlagReader<F extends string = string> {
  /** Whether the flag is on for this entity (gradual rollouts are per entity). */
  isOn(name: F): boolean;
}

export interface RequiredJob<T extends string = string> {
  type: T;
  payload?: Record<string, unknown>;
  priority?: number;
}

export type Decision<T extends string = string> =
  | { required: RequiredJob<T>[] }
  | { done: true; outcome?: 'completed' | 'failed' };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface HandlerContext {
  entity: Entity;
  payload: Record<string, unknown>;
  jobId: number;
  attempt: number;
  correlationId: string;
  traceId: string;
  /** Aborted at the type's timeout, on shutdown, or when the run's lease is lost. */
  signal: AbortSignal;
  log: Logger;
  /** Read-only queries against canon's database (for handlers that look at other entities). */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

/** What a job type gets for each setting it leaves out. */
export const JOB_TYPE_DEFAULTS = {
  maxAttempts: 5,
  timeoutSeconds: 300,
  backoff: { baseSeconds: 1, maxSeconds: 300 },
  breaker: { threshold: 10, cooldownSeconds: 30 },
} as const;

/** A job type's settings; each one left out takes its value from JOB_TYPE_DEFAULTS. */
export interface JobTypeSpec {
  maxAttempts?: number;
  timeoutSeconds?: number;
  backoff?: { baseSeconds?: number; maxSeconds?: number };
  breaker?: { threshold?: number; cooldownSeconds?: number };
}

/** One offline check of a proof: whether it holds, and what was found (a line of a report). */
export interface ProofCheck {
  ok: boolean;
  detail: string;
}

/** A named check of one entity's proofs: a line of `canon anchor verify`. */
export interface EntityCheck extends ProofCheck {
  name: string;
}

/**
 * What canon's proof reports need from a pipeline whose results carry proofs: the provenance
 * report (`canon report:provenance`, `report:debug-provenance`, the /metrics probe) and
 * `canon anchor verify`. The provenance format fixes the shape of the claims
 * (docs/PROVENANCE.md); the pipeline says which events hold them and how to check them.
 */
export interface PipelineProofs {
  /**
   * The events whose payloads a provenance report attests, by role: `content` carries
   * `payload.content`; `artifact`, `timestamp` and `anchor` carry their claim in
   * `payload.result` (a `sha256`, a timestamp token, an inclusion proof).
   */
  kinds: { content: string; artifact: string; timestamp: string; anchor: string };
  /** The artifact hash (64 hex) that the content should have; undefined when it has none. */
  contentHash(content: unknown): string | undefined;
  /** A timestamp token checked offline: its signature and key, and that it covers `artifactSha256`. */
  verifyTimestamp(token: TimestampClaim, artifactSha256: string): ProofCheck;
  /** An inclusion proof checked offline: it places `artifactSha256` under its root. */
  verifyAnchor(anchor: AnchorClaim, artifactSha256: string): ProofCheck;
  /** Every check of one entity, from its events alone (`canon anchor verify`). */
  verifyEntity(events: LedgerEvent[]): EntityCheck[];
  /** Proofs made in bulk for `canon load`'s synthetic history; a pipeline without it cannot be loaded. */
  synthetic?(): SyntheticProofs;
}

/** The proof results `canon load` writes, made as the pipeline's handlers would have made them. */
export interface SyntheticProofs {
  /** The timestamp step's result for `hash`, as issued at `timestamp` (ISO 8601). */
  stamp(hash: string, entityId: string, timestamp: string): Record<string, unknown>;
  /** The anchor step's result for each document of one batch, by entity id. */
  anchor(batch: { id: string; sha256: string }[]): Map<string, Record<string, unknown>>;
}

export interface FlagSpec {
  /** Created on (for every entity) when true; off otherwise. Never changed once the flag exists. */
  default?: boolean;
  description?: string;
}

/** A handler: runs one job of its type, async and idempotent; its result (JSON) is recorded in `<type>.succeeded`. */
export type Handler = (ctx: HandlerContext) => Promise<unknown>;

/**
 * A pipeline. `T` are its job types and `F` its flags; `definePipeline` infers both from
 * `jobTypes` and `flags`, so a handler missing for a type, a decision requiring an unknown
 * type or a read of an undeclared flag is a type error. Everywhere else the defaults apply.
 */
export interface Pipeline<T extends string = string, F extends string = string> {
  name: string;
  flags?: Record<F, FlagSpec>;
  jobTypes: Record<T, JobTypeSpec>;
  /** Pure: the entity's history and its flags → the jobs now required, or done. */
  authority(entity: Entity, flags: FlagReader<F>): Decision<T>;
  handlers: Record<T, Handler>;
  /** Best-effort read models, called with the entity after each committed decision; failures are logged, never block. */
  projections?: Record<string, (entity: Entity, ctx: { log: Logger }) => Promise<void> | void>;
  /** How the pipeline's proofs are read and checked; without it reports attest the ledger and runs only. */
  proofs?: PipelineProofs;
}

// biome-ignore lint/suspicious/noExplicitAny: a module's functions are checked by their own types, this only checks they are functions
const fn = z.custom<(...args: any[]) => any>((v) => typeof v === 'function', { message: 'expected a function' });

export const jobTypeSchema = z
  .object({
    maxAttempts: z.number().int().min(1).max(1000).optional(),
    timeoutSeconds: z.number().positive().max(86_400).optional(),
    backoff: z
      .object({
        baseSeconds: z.number().min(0).max(86_400).optional(),
        maxSeconds: z.number().min(0).max(86_400).optional(),
      })
      .strict()
      .optional(),
    breaker: z
      .object({
        threshold: z.number().int().min(1).max(10_000).optional(),
        cooldownSeconds: z.number().positive().max(86_400).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export const pipelineSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'expected a lowercase name like "documents"'),
    flags: z
      .record(
        z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,99}$/, 'invalid flag name'),
        z.object({ default: z.boolean().optional(), description: z.string().max(500).optional() }).strict(),
      )
      .optional(),
    jobTypes: z.record(
      z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'job type names are lowercase letters, digits and _'),
      jobTypeSchema,
    ),
    authority: fn,
    handlers: z.record(z.string(), fn),
    projections: z.record(z.string(), fn).optional(),
    proofs: z
      .object({
        kinds: z
          .object({
            content: z.string().min(1),
            artifact: z.string().min(1),
            timestamp: z.string().min(1),
            anchor: z.string().min(1),
          })
          .strict(),
        contentHash: fn,
        verifyTimestamp: fn,
        verifyAnchor: fn,
        verifyEntity: fn,
        synthetic: fn.optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (Object.keys(p.jobTypes).length === 0)
      ctx.addIssue({ code: 'custom', path: ['jobTypes'], message: 'declare at least one job type' });
    if ('decide' in p.jobTypes)
      ctx.addIssue({ code: 'custom', path: ['jobTypes', 'decide'], message: '"decide" is canon\'s own decision type' });
    for (const t of Object.keys(p.jobTypes)) {
      if (!(t in p.handlers))
        ctx.addIssue({ code: 'custom', path: ['handlers', t], message: `job type "${t}" has no handler` });
    }
    for (const h of Object.keys(p.handlers)) {
      if (!(h in p.jobTypes))
        ctx.addIssue({
          code: 'custom',
          path: ['handlers', h],
          message: `handler "${h}" has no job type declared in jobTypes`,
        });
    }
  });

export const doneDecision = z
  .object({ done: z.literal(true), outcome: z.enum(['completed', 'failed']).optional() })
  .strict();
export const requiredDecision = z
  .object({
    required: z.array(
      z
        .object({
          type: z.string(),
          payload: z.record(z.string(), z.unknown()).optional(),
          priority: z.number().int().optional(),
        })
        .strict(),
    ),
  })
  .strict();
export const decisionSchema = z.union([doneDecision, requiredDecision]);

/**
 * Identity helper that gives pipeline authors types and editor completion: the job types are
 * inferred from `jobTypes` and the flags from `flags` (NoInfer keeps the handlers and the
 * authority from widening them).
 */
export function definePipeline<const T extends string, const F extends string = never>(p: {
  name: string;
  flags?: Record<F, FlagSpec>;
  jobTypes: Record<T, JobTypeSpec>;
  authority(entity: Entity, flags: FlagReader<NoInfer<F>>): Decision<NoInfer<T>>;
  handlers: Record<NoInfer<T>, Handler>;
  projections?: Pipeline['projections'];
  proofs?: PipelineProofs;
}): Pipeline<T, F> {
  return p;
}
