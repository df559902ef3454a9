// Testing a pipeline without a worker or a database: an entity's history built in memory, the
// authority asked what it requires (through the decider's own planning, so what canon would
// skip as outstanding is skipped here too), and one handler run the way the executor runs it
// (its timeout, the result's JSON check, the error classes).
import { AuthorityError, planDecision } from '../engine/decide.js';
import { AbortError, callHandler, classifyFailure } from '../engine/execute.js';
import { createLogger } from '../engine/log.js';
import { coerceError } from '../errors.js';
import type { LedgerEvent } from '../ledger.js';
import { type Entity, JOB_TYPE_DEFAULTS, type Logger, type Pipeline } from '../pipeline/define.js';

/** An event of a history written by hand: its kind, and optionally its payload and actor. */
export interface EventInput {
  kind: string;
  payload?: Record<string, unknown>;
  actor?: string;
}

/**
 * An entity with the given history, its events numbered as the ledger would number them
 * (seq from 1, positions, one correlation id, times a millisecond apart). A string is an
 * event without payload.
 */
export function makeEntity(id: string, events: (EventInput | string)[]): Entity {
  const start = Date.parse('2026-01-01T00:00:00Z');
  return {
    id,
    events: events.map((e, i): LedgerEvent => {
      const input = typeof e === 'string' ? { kind: e } : e;
      return {
        position: i + 1,
        entity_id: id,
        seq: i + 1,
        kind: input.kind,
        payload: input.payload ?? {},
        correlation_id: id,
        causation_id: i === 0 ? null : i,
        trace_id: null,
        actor: input.actor ?? 'test',
        created_at: new Date(start + i),
      };
    }),
  };
}

/** What the decider would do with this history: the jobs it would require now, and whether the entity is done. */
export interface DecisionPlan<T extends string = string> {
  /** The jobs the decider would require (append `job.<type>.required` and enqueue), in order. */
  required: { type: T; payload: Record<string, unknown>; priority: number }[];
  /** Types the authority asked for that are already required and still without a result: not required again. */
  skipped: T[];
  done: boolean;
  outcome: 'completed' | 'failed' | null;
  /** Every flag the authority read, with the value it saw. */
  flagsRead: Record<string, boolean>;
}

/**
 * Asks the pipeline's authority about a history, as the decider would. Flags not given are
 * off. Throws an Error with the message a decision run would record when the authority throws,
 * returns something that is not a decision, or requires a type the pipeline does not declare.
 */
export function decide<T extends string, F extends string>(
  pipeline: Pipeline<T, F>,
  entity: Entity,
  options: { flags?: Partial<Record<F, boolean>> } = {},
): DecisionPlan<T> {
  const job = {
    id: 0,
    lane: 'decision' as const,
    type: 'decide',
    entity_id: entity.id,
    payload: {},
    attempts: 1,
    max_attempts: 1,
    correlation_id: entity.id,
    trace_id: 'test',
    source_event_position: entity.events.at(-1)?.position ?? null,
  };
  let plan: ReturnType<typeof planDecision>;
  try {
    plan = planDecision(job, entity.events, (options.flags ?? {}) as Record<string, boolean>, pipeline as Pipeline);
  } catch (e) {
    // the decider's own error class stays internal: the test sees the message a run would record
    if (e instanceof AuthorityError) throw new Error(e.message);
    throw e;
  }
  return {
    required: plan.writes.map((w) => ({
      type: w.type as T,
      payload: (w.event_payload as { payload: Record<string, unknown> }).payload,
      priority: w.priority,
    })),
    skipped: plan.skipped as T[],
    done: plan.done,
    outcome: (plan.detail.outcome as 'completed' | 'failed' | null) ?? null,
    flagsRead: plan.detail.flags as Record<string, boolean>,
  };
}

/** How a handler's run ends. */
export type HandlerOutcome =
  | { outcome: 'succeeded'; result: unknown }
  | {
      /** 'retry' while attempts are left and the error is not permanent; else 'dead'. */
      outcome: 'retry' | 'dead';
      reason: 'handler_error' | 'precondition_failed' | 'timeout';
      /** The error as the run records it ("PermanentError: …"). */
      error: string;
    };

export interface RunHandlerOptions {
  /** The entity and its history (see makeEntity). */
  entity: Entity;
  /** The job's payload: what the authority required with it (canon adds the flags it read). */
  payload?: Record<string, unknown>;
  /** Which attempt this is (default 1); the last one (maxAttempts) ends dead instead of retry. */
  attempt?: number;
  /** Replaces the type's timeoutSeconds. */
  timeoutSeconds?: number;
  /** What `ctx.query` answers (default: throws, since there is no database). */
  query?: (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;
  /** Where `ctx.log` writes (default: nowhere). */
  log?: Logger;
  jobId?: number;
  correlationId?: string;
  traceId?: string;
}

/**
 * Runs one handler the way the executor does: with a context, aborted at the type's timeout;
 * its result must be JSON; an error ends the run as retry or dead by canon's rules
 * (PermanentError and PreconditionError are dead at once).
 */
export async function runHandler<T extends string>(
  pipeline: Pipeline<T, string>,
  type: NoInfer<T>,
  options: RunHandlerOptions,
): Promise<HandlerOutcome> {
  const handler = pipeline.handlers[type];
  if (typeof handler !== 'function') throw new Error(`the pipeline has no handler for job type "${type}"`);
  const spec = pipeline.jobTypes[type] ?? {};
  const attempt = options.attempt ?? 1;
  const maxAttempts = spec.maxAttempts ?? JOB_TYPE_DEFAULTS.maxAttempts;
  const controller = new AbortController();
  const timeout = options.timeoutSeconds ?? spec.timeoutSeconds ?? JOB_TYPE_DEFAULTS.timeoutSeconds;
  const timer = setTimeout(() => controller.abort(new AbortError('timeout')), timeout * 1000);
  try {
    const text = await callHandler(
      handler,
      {
        entity: options.entity,
        payload: options.payload ?? {},
        jobId: options.jobId ?? 1,
        attempt,
        correlationId: options.correlationId ?? options.entity.id,
        traceId: options.traceId ?? `test-${type}-${attempt}`,
        signal: controller.signal,
        log: options.log ?? createLogger({ level: 'silent' }),
        query: async <R = Record<string, unknown>>(sql: string, params?: unknown[]) => {
          if (!options.query) throw new Error('ctx.query: no database in runHandler (pass options.query)');
          return (await options.query(sql, params)) as R[];
        },
      },
      controller,
    );
    // the executor records this JSON text; the test gets back what a reader of the event would
    return { outcome: 'succeeded', result: JSON.parse(text) };
  } catch (e) {
    const f = classifyFailure(coerceError(e));
    return { outcome: f.permanent || attempt >= maxAttempts ? 'dead' : 'retry', reason: f.reason, error: f.message };
  } finally {
    clearTimeout(timer);
  }
}
