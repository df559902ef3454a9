// The ExecutionEngine's work on one claimed job: run the handler with an AbortSignal (type
// timeout, shutdown, lost lease), then end the run through the fenced SQL functions. The
// result event and the job's success commit together: for most runs in a group commit of
// canon.complete_runs (the Completer below), else in canon.complete_run.
import type pg from 'pg';
import { prepared } from '../db/connect.js';
import { coerceError, isRunGone, isTransientDbError } from '../errors.js';
import { history, type LedgerEvent } from '../ledger.js';
import {
  type Handler,
  type HandlerContext,
  type Logger,
  PermanentError,
  type Pipeline,
  PreconditionError,
} from '../pipeline/define.js';
import { ENGINE_SQL } from '../sql/engine.js';
import { backoffMs, type FaultLog } from './faults.js';
import type { ClaimedJob } from './types.js';

export type AbortCause = 'timeout' | 'shutdown' | 'lease-lost';

export type ExecOutcome = 'succeeded' | 'retry' | 'dead' | 'fenced' | 'released';

export class AbortError extends Error {
  constructor(readonly cause_: AbortCause) {
    super(
      cause_ === 'timeout' ? 'handler timed out' : cause_ === 'shutdown' ? 'worker shutting down' : 'run lease lost',
    );
    this.name = 'AbortError';
  }
}

/**
 * Retries an operation on transient database errors (a lost connection, a server restarting,
 * a statement or lock timeout) with capped exponential backoff. A worker passes its FaultLog,
 * so a fault is one line however many calls retry through it.
 */
export async function withReconnect<T>(
  fn: () => Promise<T>,
  log: Logger,
  opts: { deadlineMs?: number; stopped?: () => boolean; faults?: FaultLog; during?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.deadlineMs ?? 120_000);
  const where = opts.during ?? 'database call';
  for (let attempt = 0; ; attempt++) {
    try {
      const out = await fn();
      if (attempt > 0) opts.faults?.cleared(where);
      return out;
    } catch (e) {
      if (!isTransientDbError(e) || Date.now() > deadline || opts.stopped?.()) {
        if (attempt > 0) opts.faults?.cleared(where); // given up: no longer retried
        throw e;
      }
      const wait = backoffMs(attempt);
      if (opts.faults) opts.faults.failed(where, e);
      else log.warn('database unavailable, retrying', { retry_in_ms: Math.round(wait), error: coerceError(e).message });
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

export function serialiseResult(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value === undefined ? null : value);
  } catch (e) {
    throw new PermanentError(`handler returned a value that is not JSON-serialisable: ${coerceError(e).message}`);
  }
  if (text === undefined)
    throw new PermanentError('handler returned a value that is not JSON-serialisable (a function or symbol)');
  if (/\\u0000/.test(text))
    throw new PermanentError('handler result contains a NUL character (\\u0000), which Postgres cannot store');
  if (text.length > 8 * 1024 * 1024)
    throw new PermanentError(`handler result is ${text.length} bytes; the limit is 8 MiB`);
  return text;
}

export interface ExecuteArgs {
  pool: pg.Pool;
  job: ClaimedJob;
  runId: number;
  workerId: string;
  pipeline: Pipeline;
  timeoutSeconds: number;
  controller: AbortController;
  log: Logger;
  /** the entity's history when the worker read it with the claim (else read here) */
  events?: LedgerEvent[];
  /** batches completions with other in-flight runs (else one transaction per run) */
  complete?: Completer;
  /** called when the handler has succeeded and only the completion is left to write */
  handlerDone?: () => void;
  /** the worker's fault log: retried database calls report there */
  faults?: FaultLog;
}

/**
 * Runs a handler until it settles or its signal aborts (the timeout, shutdown, a lost lease),
 * whichever comes first, and returns its result as the JSON text a completion records.
 */
export async function callHandler(handler: Handler, ctx: HandlerContext, controller: AbortController): Promise<string> {
  const aborted = new Promise<never>((_, reject) => {
    const onAbort = () =>
      reject(controller.signal.reason instanceof Error ? controller.signal.reason : new AbortError('shutdown'));
    if (controller.signal.aborted) onAbort();
    else controller.signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => {});
  const result = await Promise.race([Promise.resolve().then(() => handler(ctx)), aborted]);
  return serialiseResult(result);
}

export async function execute(a: ExecuteArgs): Promise<ExecOutcome> {
  const { pool, job, runId, workerId, pipeline, controller, log } = a;
  const timer = setTimeout(() => controller.abort(new AbortError('timeout')), a.timeoutSeconds * 1000);
  let resultText: string;
  try {
    const handler = pipeline.handlers[job.type];
    if (!handler) throw new PermanentError(`the loaded pipeline has no handler for job type "${job.type}"`);
    const events =
      a.events ??
      (await withReconnect(() => history(pool, job.entity_id), log, { faults: a.faults, during: 'history' }));
    resultText = await callHandler(
      handler,
      {
        entity: { id: job.entity_id, events },
        payload: job.payload,
        jobId: job.id,
        attempt: job.attempts,
        correlationId: job.correlation_id,
        traceId: job.trace_id,
        signal: controller.signal,
        log,
        query: async (sql, params) => (await pool.query(sql, params as unknown[])).rows,
      },
      controller,
    );
  } catch (e) {
    clearTimeout(timer);
    return fail(a, e);
  }
  clearTimeout(timer);
  a.handlerDone?.();
  const done = a.complete
    ? await a.complete.complete({
        run_id: runId,
        worker_id: workerId,
        result: resultText,
        event_kind: `${job.type}.succeeded`,
      })
    : await completeOne(pool, log, a.faults, {
        run_id: runId,
        worker_id: workerId,
        result: resultText,
        event_kind: `${job.type}.succeeded`,
      });
  if (!done.ok) {
    log.warn('completion refused: the run was taken away (rescued or cancelled); nothing recorded twice');
    return 'fenced';
  }
  log.debug('job succeeded', { event_position: done.event_position });
  return 'succeeded';
}

export interface HandlerFailure {
  /** No retry: the job is dead at once. */
  permanent: boolean;
  reason: 'handler_error' | 'precondition_failed' | 'timeout';
  /** What the run records as its error (at most 4000 characters). */
  message: string;
}

/** How a handler's error ends its run (by class or by name, so an error class from another copy of canon counts too). */
export function classifyFailure(err: Error): HandlerFailure {
  const precondition = err instanceof PreconditionError || err.name === 'PreconditionError';
  const permanent =
    precondition ||
    err instanceof PermanentError ||
    err.name === 'PermanentError' ||
    (err as { permanent?: unknown }).permanent === true;
  const reason = precondition
    ? 'precondition_failed'
    : err instanceof AbortError && err.cause_ === 'timeout'
      ? 'timeout'
      : 'handler_error';
  const message = `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}`.slice(0, 4000);
  return { permanent, reason, message };
}

async function fail(a: ExecuteArgs, e: unknown): Promise<ExecOutcome> {
  const { pool, runId, workerId, log } = a;
  const err = coerceError(e);
  if (err instanceof AbortError && err.cause_ === 'shutdown') {
    const r = await goneIsRefused(
      withReconnect(() => pool.query(ENGINE_SQL.release, [runId, workerId, 'released']), log, {
        faults: a.faults,
        during: 'release',
      }),
    );
    log.info('released on shutdown', {});
    return r.rows[0].ok ? 'released' : 'fenced';
  }
  const { permanent, reason, message: msg } = classifyFailure(err);
  const r = await goneIsRefused(
    withReconnect(() => pool.query(ENGINE_SQL.fail, [runId, workerId, msg, permanent, reason]), log, {
      faults: a.faults,
      during: 'failure report',
    }),
  );
  const row = r.rows[0];
  if (!row.ok) {
    log.warn('failure report refused: the run was taken away (rescued or cancelled)', { error: msg });
    return 'fenced';
  }
  (row.outcome === 'dead' ? log.error : log.warn)(row.outcome === 'dead' ? 'job dead' : 'job failed, will retry', {
    reason,
    error: msg,
  });
  return row.outcome as ExecOutcome;
}

/** The most successful runs one group commit (canon.complete_runs) ends. */
export const COMPLETION_BATCH = 100;

interface Done {
  ok: boolean;
  event_position: number | null;
}

interface Completion {
  run_id: number;
  worker_id: string;
  /** the handler's result as JSON text (serialiseResult) */
  result: string;
  event_kind: string;
}

/** A run lost with its claim in a crash answers like a run taken away: refused, nothing written. */
export async function goneIsRefused(q: Promise<pg.QueryResult>): Promise<pg.QueryResult> {
  try {
    return await q;
  } catch (e) {
    if (!isRunGone(e)) throw e;
    return { rows: [{ ok: false }] } as unknown as pg.QueryResult;
  }
}

async function completeOne(pool: pg.Pool, log: Logger, faults: FaultLog | undefined, c: Completion): Promise<Done> {
  const r = (
    await goneIsRefused(
      withReconnect(() => pool.query(ENGINE_SQL.complete, [c.run_id, c.worker_id, c.result, c.event_kind]), log, {
        faults,
        during: 'completion',
      }),
    )
  ).rows[0];
  return { ok: r.ok, event_position: r.event_position ?? null };
}

/**
 * Group commit for successful runs: completions that arrive while one batch is being written
 * wait for it and go together in the next, through canon.complete_runs (one round trip, one
 * transaction, one WAL flush; each run still passes canon.complete_run's fence). If a batch
 * fails for a reason other than a lost connection, its runs are completed one by one, so one
 * bad run cannot hold back the others.
 */
export class Completer {
  private queue: { c: Completion; resolve: (r: Done) => void; reject: (e: unknown) => void }[] = [];
  private flushing = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly log: Logger,
    private readonly faults?: FaultLog,
    private readonly maxBatch = COMPLETION_BATCH,
  ) {}

  complete(c: Completion): Promise<Done> {
    return new Promise((resolve, reject) => {
      this.queue.push({ c, resolve, reject });
      if (!this.flushing) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.maxBatch);
        let out: (Done | Error)[];
        try {
          out = await this.write(batch.map((b) => b.c));
        } catch (e) {
          out = batch.map(() => coerceError(e));
        }
        for (const [i, b] of batch.entries()) {
          if (out[i] instanceof Error) b.reject(out[i]);
          else b.resolve(out[i] as Done);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** One result (or error) per completion, in order. */
  private async write(batch: Completion[]): Promise<(Done | Error)[]> {
    if (batch.length > 1) {
      // the results are JSON text already (serialiseResult): spliced in, not parsed again
      const json = `[${batch.map((c) => `{"run_id":${c.run_id},"worker_id":${JSON.stringify(c.worker_id)},"event_kind":${JSON.stringify(c.event_kind)},"result":${c.result}}`).join(',')}]`;
      try {
        const rows = (
          await withReconnect(
            () =>
              this.pool.query(
                prepared(this.pool, { name: 'canon_complete_runs', text: ENGINE_SQL.completeMany, values: [json] }),
              ),
            this.log,
            { faults: this.faults, during: 'completion' },
          )
        ).rows;
        const byRun = new Map(rows.map((r) => [Number(r.run_id), r]));
        return batch.map((c) => ({
          ok: !!byRun.get(c.run_id)?.ok,
          event_position: byRun.get(c.run_id)?.event_position ?? null,
        }));
      } catch (e) {
        if (isTransientDbError(e)) throw e;
        this.log.warn('batched completion failed; completing its runs one by one', {
          runs: batch.length,
          error: coerceError(e).message,
        });
      }
    }
    const out: (Done | Error)[] = [];
    for (const c of batch) {
      try {
        out.push(await completeOne(this.pool, this.log, this.faults, c));
      } catch (e) {
        out.push(coerceError(e));
      }
    }
    return out;
  }
}
