// A worker process: claims jobs of its lanes (decision, execution or both), runs them with
// bounded concurrency, heartbeats their runs, and shuts down gracefully. LISTEN/NOTIFY wakes
// it as soon as the gateway enqueues; a jittered poll is the fallback when notifications are
// lost (a dropped LISTEN connection, a NOTIFY sent while reconnecting).

import { randomUUID } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import { clientConfig, prepared } from '../db/connect.js';
import { coerceError, isConnectionError } from '../errors.js';
import { history, type LedgerEvent } from '../ledger.js';
import { version } from '../paths.js';
import type { Logger, Pipeline } from '../pipeline/define.js';
import { ENGINE_SQL } from '../sql/engine.js';
import { type BatchOutcome, type DecisionJob, decideBatch } from './decide.js';
import { AbortError, COMPLETION_BATCH, Completer, execute, goneIsRefused, withReconnect } from './execute.js';
import { backoffMs, FaultLog } from './faults.js';
import type { ClaimedJob, Lane } from './types.js';

export interface WorkerOptions {
  pool: pg.Pool;
  /**
   * Connection string for the LISTEN connection (a pool client cannot hold LISTEN reliably);
   * none behind a transaction pooler without CANON_LISTEN_URL: the worker then polls.
   */
  url?: string;
  pipeline: Pipeline;
  pipelineFile?: string;
  lanes: Lane[];
  role: string;
  concurrency: number;
  log: Logger;
  /** Process until nothing is ready, then stop. */
  once?: boolean;
  maxJobs?: number;
  maxSeconds?: number;
  pollMs?: number;
  batchSize?: number;
  /** Decisions claimed and made in one transaction (default 100). */
  decisionBatch?: number;
  graceMs?: number;
  listen?: boolean;
  onJobDone?: (job: ClaimedJob, outcome: string) => void;
}

export interface WorkerStats {
  worker_id: string;
  claimed: number;
  succeeded: number;
  retried: number;
  dead: number;
  fenced: number;
  released: number;
  decisions: number;
  jobs_required: number;
  errors: number;
}

interface InFlight {
  job: ClaimedJob;
  runId: number;
  controller: AbortController;
  done: Promise<void>;
  /** the handler has returned; only its (group-committed) completion is outstanding */
  handlerDone?: boolean;
}

export class Worker {
  readonly id: string;
  readonly stats: WorkerStats;
  private readonly o: Required<Pick<WorkerOptions, 'pollMs' | 'batchSize' | 'decisionBatch' | 'graceMs'>> &
    WorkerOptions;
  private readonly inflight = new Map<number, InFlight>();
  private stopping = false;
  private wakeUp: (() => void) | undefined;
  private wokenEarly = false;
  // Per lane: notifications received, and how many had been received when a claim last found
  // the lane empty. A lane is claimed only while it may have work (a notification since, a
  // full claim, a poll, no LISTEN connection): an empty claim costs a round trip and server
  // CPU on the path of every job, and a one-process worker made one per lane per loop.
  private notes = new Map<Lane, number>();
  private drainedAt = new Map<Lane, number>();
  private completer?: Completer;
  private listener?: pg.Client;
  private timeouts = new Map<string, number>();
  private heartbeatTimer?: NodeJS.Timeout;
  private beating = false;
  private readonly log: Logger;
  private readonly faults: FaultLog;
  private startedAt = Date.now();

  constructor(opts: WorkerOptions) {
    this.o = { pollMs: 1000, batchSize: 10, decisionBatch: 100, graceMs: 10_000, ...opts };
    // <role>-<uuid>: unique per process, so ownership checks can never confuse two workers
    this.id = `${opts.role}-${randomUUID()}`;
    this.log = opts.log.child({ worker_id: this.id });
    this.faults = new FaultLog(this.log);
    this.stats = {
      worker_id: this.id,
      claimed: 0,
      succeeded: 0,
      retried: 0,
      dead: 0,
      fenced: 0,
      released: 0,
      decisions: 0,
      jobs_required: 0,
      errors: 0,
    };
  }

  /** Stops claiming; in-flight jobs finish or, after the grace period, are released. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.log.info('stopping: no new claims', { in_flight: this.inflight.size });
    this.wake();
  }

  get stoppingNow(): boolean {
    return this.stopping;
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    // a notification that arrives while the loop is claiming (not sleeping) must not be lost:
    // the next sleep returns at once instead of waiting a whole poll interval
    if (w) w();
    else this.wokenEarly = true;
  }

  /** A notification for `lane` (or, without one, for every lane). */
  private noted(lane?: Lane): void {
    for (const l of lane ? [lane] : this.o.lanes) this.notes.set(l, (this.notes.get(l) ?? 0) + 1);
  }

  /** Every lane may have work again: a poll, a reconnected listener, the start. */
  private pollAll(): void {
    this.drainedAt.clear();
  }

  private mayHaveWork(lane: Lane): boolean {
    if (!this.listener) return true; // without LISTEN, every loop is a poll
    const drained = this.drainedAt.get(lane);
    return drained === undefined || (this.notes.get(lane) ?? 0) > drained;
  }

  private sleep(ms: number): Promise<void> {
    if (this.wokenEarly) {
      this.wokenEarly = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeUp = undefined;
        this.pollAll(); // the fallback for lost notifications: look at every lane
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** Poll interval with ±20 % jitter, so many idle workers do not query in lockstep. */
  private jitteredPoll(): number {
    return this.o.pollMs * (0.8 + Math.random() * 0.4);
  }

  async run(): Promise<WorkerStats> {
    await withReconnect(() => this.register(), this.log, {
      stopped: () => this.stopping,
      faults: this.faults,
      during: 'register',
      deadlineMs: Number.POSITIVE_INFINITY,
    });
    if (this.o.listen !== false) {
      if (this.o.url) void this.listenLoop(this.o.url);
      else
        this.log.info(
          `LISTEN is not available through a transaction pooler: polling every ${this.o.pollMs} ms (set CANON_LISTEN_URL to a direct Postgres URL for immediate wake-ups)`,
        );
    }
    this.scheduleHeartbeat();
    this.log.info('worker started', {
      lanes: this.o.lanes.join(','),
      concurrency: this.o.concurrency,
      pid: process.pid,
    });
    let failedRounds = 0;
    while (!this.stopping) {
      if (this.o.maxSeconds !== undefined && Date.now() - this.startedAt > this.o.maxSeconds * 1000) break;
      const remaining = this.o.maxJobs !== undefined ? this.o.maxJobs - this.stats.claimed : Infinity;
      if (remaining <= 0) break;
      let claimed = 0;
      let skipped = false;
      let lane: Lane | undefined;
      try {
        for (lane of this.o.lanes) {
          // A slot is busy while its handler runs. A run whose handler has returned waits only
          // for its completion's group commit: the next batch is claimed meanwhile (claim and
          // completion overlap), up to two full group commits of such runs (or `concurrency`,
          // if larger), so a slow database holds the worker back instead of piling
          // completions up in memory. Letting them gather is what makes the group commits
          // big enough to be cheap: a commit's fixed cost is shared by every run in it.
          const mine = [...this.inflight.values()].filter((f) => f.job.lane === lane);
          const finishing = mine.filter((f) => f.handlerDone).length;
          const busy =
            mine.length - finishing + Math.max(0, finishing - Math.max(this.o.concurrency, 2 * COMPLETION_BATCH));
          // Decisions are pure and quick: a batch of them is one transaction, whatever the
          // handlers' concurrency, and the bigger the batch the cheaper each decision.
          const [limit, perClaim] =
            lane === 'decision' ? [this.o.decisionBatch, this.o.decisionBatch] : [this.o.concurrency, this.o.batchSize];
          const free = Math.min(limit - busy, perClaim, remaining - claimed);
          if (free <= 0) continue;
          if (!this.mayHaveWork(lane)) {
            skipped = true;
            continue;
          }
          const notesBefore = this.notes.get(lane) ?? 0;
          const jobs = await this.claim(lane, free);
          this.faults.cleared(`claim ${lane}`);
          claimed += jobs.length;
          // fewer than asked: the lane is empty as of the notifications seen before the claim
          if (jobs.length < free) this.drainedAt.set(lane, notesBefore);
        }
        failedRounds = 0;
      } catch (e) {
        // whatever the database answered, the worker lives on: one line per fault, a retry
        // with backoff, the claims it made before the error are in flight as usual
        this.faults.failed(`claim ${lane}`, e);
        await this.sleep(backoffMs(failedRounds++));
        continue;
      }
      if (claimed > 0) continue; // there may be more: claim again straight away
      if (this.o.once && this.inflight.size === 0) {
        const ready = await withReconnect(() => this.o.pool.query(ENGINE_SQL.queuedReady), this.log, {
          faults: this.faults,
          during: 'claim',
        }).catch(() => ({
          rows: [] as { lane: string; n: number }[],
        }));
        if (!ready.rows.some((r) => this.o.lanes.includes(r.lane as Lane) && r.n > 0)) break;
        if (skipped) {
          this.pollAll(); // work is ready in a lane this loop did not look at: look now
          continue;
        }
      }
      await this.sleep(this.inflight.size > 0 ? Math.min(this.jitteredPoll(), 250) : this.jitteredPoll());
    }
    await this.drain();
    return this.stats;
  }

  private async register(): Promise<void> {
    await this.o.pool.query(ENGINE_SQL.registerWorker, [
      this.id,
      this.o.role,
      this.o.lanes,
      process.pid,
      os.hostname(),
      this.o.concurrency,
      this.o.pipelineFile ?? null,
      version,
    ]);
    const t = await this.o.pool.query(ENGINE_SQL.typeTimeouts);
    this.timeouts = new Map(t.rows.map((r) => [r.name as string, Number(r.timeout_seconds)]));
  }

  private async claim(lane: Lane, n: number): Promise<ClaimedJob[]> {
    // One round trip for the claim and its run ids (prepared: the same text every time). An
    // execution batch comes with its entities' histories (canon.claim_runs_with_history), so handlers start
    // without a query each; the decider reads its history itself, under the entity's lock.
    const histories = new Map<string, LedgerEvent[]>();
    let claimed: (ClaimedJob & { run_id: number })[];
    if (lane === 'execution') {
      const rows = (
        await this.o.pool.query(
          prepared(this.o.pool, {
            name: 'canon_claim_runs_with_history',
            text: ENGINE_SQL.claimRunsWithHistory,
            values: [lane, this.id, n],
          }),
        )
      ).rows as (ClaimedJob & { run_id: number; events: LedgerEvent[] })[];
      claimed = rows.map(({ events, ...job }) => {
        // created_at arrives as JSON text; handlers get the Date a row read would give
        histories.set(
          job.entity_id,
          events.map((e) => ({ ...e, created_at: new Date(e.created_at) })),
        );
        return job;
      });
    } else {
      claimed = (
        await this.o.pool.query(
          prepared(this.o.pool, { name: 'canon_claim_runs', text: ENGINE_SQL.claimRuns, values: [lane, this.id, n] }),
        )
      ).rows as (ClaimedJob & { run_id: number })[];
    }
    this.stats.claimed += claimed.length;
    // run ids are int8: numbers here whatever type parser the application set for pg
    for (const c of claimed) c.run_id = Number(c.run_id);
    if (lane === 'decision') {
      // a decision batch is one transaction: its runs are in flight until it commits
      const batch: DecisionJob[] = claimed.map(({ run_id: runId, ...job }) => ({ job, runId }));
      const done = this.processDecisions(batch).finally(() => {
        for (const b of batch) this.inflight.delete(b.runId);
        this.wake();
      });
      for (const b of batch)
        this.inflight.set(b.runId, { job: b.job, runId: b.runId, controller: new AbortController(), done });
      return claimed;
    }
    for (const { run_id: runId, ...job } of claimed) {
      const controller = new AbortController();
      const entry: InFlight = { job, runId, controller, done: Promise.resolve() };
      entry.done = this.process(job, runId, controller, histories.get(job.entity_id)).finally(() => {
        this.inflight.delete(runId);
        this.wake();
      });
      this.inflight.set(runId, entry);
    }
    return claimed;
  }

  private async process(
    job: ClaimedJob,
    runId: number,
    controller: AbortController,
    events?: LedgerEvent[],
  ): Promise<void> {
    const log = this.jobLog(job);
    let outcome = 'error';
    try {
      {
        if (!this.timeouts.has(job.type))
          await withReconnect(() => this.register(), log, { faults: this.faults, during: 'register' });
        this.completer ??= new Completer(this.o.pool, this.log, this.faults);
        const handlerDone = () => {
          const f = this.inflight.get(runId);
          if (f) f.handlerDone = true;
          this.wake();
        };
        outcome = await execute({
          pool: this.o.pool,
          job,
          runId,
          workerId: this.id,
          pipeline: this.o.pipeline,
          timeoutSeconds: this.timeouts.get(job.type) ?? 300,
          controller,
          log,
          events,
          complete: this.completer,
          handlerDone,
          faults: this.faults,
        });
        if (outcome === 'succeeded') this.stats.succeeded++;
        else if (outcome === 'retry') this.stats.retried++;
        else if (outcome === 'dead') this.stats.dead++;
        else if (outcome === 'fenced') this.stats.fenced++;
        else if (outcome === 'released') this.stats.released++;
      }
    } catch (e) {
      this.stats.errors++;
      log.error('job processing error; the run will be rescued after its TTL', { error: coerceError(e).message });
    }
    this.o.onJobDone?.(job, outcome);
  }

  /** Decides a claimed batch in one transaction, then accounts for each run. */
  private async processDecisions(batch: DecisionJob[]): Promise<void> {
    let outcomes: Map<number, BatchOutcome>;
    try {
      outcomes = await withReconnect(
        async () => {
          const client = await this.o.pool.connect();
          let broken: Error | undefined;
          try {
            return await decideBatch(client, batch, this.id, this.o.pipeline);
          } catch (e) {
            // a connection that failed (lost, or a reply that never came) is dropped, not reused
            if (isConnectionError(e)) broken = coerceError(e);
            throw e;
          } finally {
            client.release(broken);
          }
        },
        this.log,
        { stopped: () => false, faults: this.faults, during: 'decision' },
      );
    } catch (e) {
      this.stats.errors += batch.length;
      this.log.error('decision batch failed; its runs will be rescued after their TTL', {
        runs: batch.length,
        error: coerceError(e).message,
      });
      for (const b of batch) this.o.onJobDone?.(b.job, 'error');
      return;
    }
    for (const { job, runId } of batch) {
      const log = this.jobLog(job);
      let outcome = 'error';
      try {
        outcome = await this.accountDecision(job, runId, outcomes.get(runId), log);
      } catch (e) {
        this.stats.errors++;
        log.error('job processing error; the run will be rescued after its TTL', { error: coerceError(e).message });
      }
      this.o.onJobDone?.(job, outcome);
    }
  }

  private async accountDecision(
    job: ClaimedJob,
    runId: number,
    o: BatchOutcome | undefined,
    log: Logger,
  ): Promise<string> {
    if (!o || o.result === 'fenced') {
      this.stats.fenced++;
      log.warn(
        'decision refused: the run was taken away (or lost with its claim in a server crash; the job runs again)',
      );
      return 'fenced';
    }
    if (o.result === 'succeeded') {
      this.stats.decisions++;
      this.stats.succeeded++;
      this.stats.jobs_required += o.required.length;
      log.debug('decided', { required: o.required.join(',') || '-', done: o.done });
      await this.project(job, log);
      return 'succeeded';
    }
    let outcome: string = o.result;
    const error = o.result === 'error' ? coerceError(o.error).message.slice(0, 4000) : (o.error ?? '');
    if (o.result === 'error') {
      // this decision's writes failed on their own: its run fails like a handler's
      const r = await goneIsRefused(
        withReconnect(() => this.o.pool.query(ENGINE_SQL.fail, [runId, this.id, error, false, 'handler_error']), log, {
          faults: this.faults,
          during: 'failure report',
        }),
      );
      outcome = r.rows[0].ok ? (r.rows[0].outcome as string) : 'fenced';
    }
    if (outcome === 'dead') this.stats.dead++;
    else if (outcome === 'retry') this.stats.retried++;
    else if (outcome === 'fenced') this.stats.fenced++;
    log.error('decision failed', { error, outcome });
    return outcome;
  }

  /** The worker's logger with the job's ids: every line about a job carries its correlation and trace. */
  private jobLog(job: ClaimedJob): Logger {
    return this.log.child({
      job_id: job.id,
      type: job.type,
      entity_id: job.entity_id,
      correlation_id: job.correlation_id,
      trace_id: job.trace_id,
    });
  }

  /** Best-effort projections: run after the decision committed; a failure is logged, never retried. */
  private async project(job: ClaimedJob, log: Logger): Promise<void> {
    const projections = this.o.pipeline.projections;
    if (!projections || Object.keys(projections).length === 0) return;
    try {
      const events = await history(this.o.pool, job.entity_id);
      for (const [name, fn] of Object.entries(projections)) {
        try {
          await fn({ id: job.entity_id, events }, { log: log.child({ projection: name }) });
        } catch (e) {
          log.warn('projection failed (best-effort, ignored)', { projection: name, error: coerceError(e).message });
        }
      }
    } catch (e) {
      log.warn('projections skipped', { error: coerceError(e).message });
    }
  }

  /** One heartbeat for all in-flight runs; runs missing from the answer lost their lease. */
  private scheduleHeartbeat(): void {
    const minTtl = Math.min(60, ...this.timeouts.values());
    const every = Math.max(200, Math.min(10_000, (minTtl * 1000) / 4));
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), every);
    this.heartbeatTimer.unref();
  }

  private async heartbeat(): Promise<void> {
    // a beat waiting on a stalled connection is not joined by more: they would only queue
    if (this.beating) return;
    this.beating = true;
    const ids = [...this.inflight.keys()];
    try {
      await this.o.pool.query(ENGINE_SQL.workerHeartbeat, [this.id, ids.length]);
      if (ids.length > 0) {
        const owned = new Set(
          (await this.o.pool.query(ENGINE_SQL.heartbeat, [this.id, ids])).rows.map((r) => Number(r.id)),
        );
        for (const id of ids) {
          const f = this.inflight.get(id);
          if (f && !owned.has(id) && f.job.lane === 'execution') {
            this.log.warn('run lease lost; aborting its handler', { job_id: f.job.id, trace_id: f.job.trace_id });
            f.controller.abort(new AbortError('lease-lost'));
          }
        }
      }
      this.faults.cleared('heartbeat');
    } catch (e) {
      // the next beat retries; runs whose lease lapses meanwhile are rescued, never doubled
      this.faults.failed('heartbeat', e);
    } finally {
      this.beating = false;
    }
  }

  private async listenLoop(url: string): Promise<void> {
    let backoff = 250;
    while (!this.stopping) {
      const client = new pg.Client(clientConfig(url, `canon-listen ${this.id}`));
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query('listen canon_jobs');
        // the worker may have finished (--once) while this connection was being made: its
        // drain found no listener to close, so close it here or the process never exits
        if (this.stopping) break;
        this.listener = client;
        // anything enqueued before LISTEN took effect sent no notification this worker saw
        this.pollAll();
        this.wake();
        backoff = 250;
        client.on('notification', (n) => {
          if (!n.payload || this.o.lanes.includes(n.payload as Lane)) {
            this.noted(n.payload ? (n.payload as Lane) : undefined);
            this.wake();
          }
        });
        await new Promise<void>((resolve) => {
          client.once('end', resolve);
          client.once('error', resolve);
        });
      } catch {
        /* the poll keeps us working; try to listen again after a pause */
      } finally {
        this.listener = undefined;
        await client.end().catch(() => {});
      }
      if (this.stopping) break;
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(10_000, backoff * 2);
      this.pollAll(); // notifications may have been missed while disconnected
      this.wake();
    }
  }

  private async drain(): Promise<void> {
    this.stopping = true;
    if (this.inflight.size > 0) {
      const all = Promise.all([...this.inflight.values()].map((f) => f.done));
      const graceful = await Promise.race([
        all.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), this.o.graceMs).unref()),
      ]);
      if (!graceful) {
        this.log.warn('grace period over: releasing in-flight jobs', { in_flight: this.inflight.size });
        for (const f of this.inflight.values()) f.controller.abort(new AbortError('shutdown'));
        await Promise.race([all, new Promise((r) => setTimeout(r, 5000).unref())]);
      }
    }
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    await this.listener?.end().catch(() => {});
    await this.o.pool.query(ENGINE_SQL.workerStopped, [this.id]).catch(() => {});
    this.log.info('worker stopped', { ...this.stats });
  }
}
