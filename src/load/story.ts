// One chunk of synthetic history, shaped exactly as canon's own code paths leave it: a
// document is created, its decision job requires protect, the gateway's job runs (sometimes
// after failed attempts), its result event asks for the next decision, and so on through tsa
// and anchor; later bursts of ordinary events are each read by one decision (the core trigger
// keeps one queued decision per entity, so a burst coalesces). Rare entities die with each
// reason code, get stuck with an old heartbeat, or are still queued. The rows reference each
// other (job ids in payloads, positions as causation, run trace ids) and are numbered only
// after the whole chunk is built, in time order, as Postgres would have numbered them.
import { requiredKind } from '../ledger.js';
import type { Json } from './jsonb.js';
import { backoffSeconds, pgTime, traceId } from './mirror.js';
import { CORE_PER_ENTITY, entityId, FATES, type Fate, type LoadOptions } from './plan.js';
import { Rng } from './rng.js';

const MS = 1000;
const SEC = 1_000_000;
/** The example pipeline's steps, in order: the job types a loaded pipeline must declare. */
export const STEPS = ['protect', 'tsa', 'anchor'] as const;
type Step = (typeof STEPS)[number];
export const TSA_FLAG = 'D1_RUN_TSA_ENABLED';
const EXEC_MAX_ATTEMPTS = 5;
/** later activity on a document (bursts) happens within this many days of its creation */
export const ACTIVE_DAYS = 10;
const DECIDE_MAX_ATTEMPTS = 10;
const EXEC_TIMEOUT = 30 * SEC; // the example pipeline's timeoutSeconds
const EXEC_BACKOFF = { baseSeconds: 0.5, maxSeconds: 30 }; // and its backoff
const DECIDE_TIMEOUT = 60 * SEC;

export interface Ev {
  ent: EntityStory;
  seq: number;
  kind: string;
  payload: Json | (() => Json);
  causation: Ev | null;
  run: Run | null;
  actor: string;
  t: number;
  position?: number;
}

export interface Job {
  ent: EntityStory;
  lane: 'decision' | 'execution';
  type: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed';
  payload: Json;
  attempts: number;
  maxAttempts: number;
  runAt: number;
  lockedBy: string | null;
  lockedAt: number | null;
  heartbeatAt: number | null;
  leaseExpiresAt: number | null;
  dedupeKey: string | null;
  lastRun: Run | null;
  source: Ev;
  lastError: string | null;
  lastReason: string | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  id?: number;
}

export interface Run {
  job: Job;
  attempt: number;
  worker: string;
  status: 'running' | 'succeeded' | 'failed';
  reason: string | null;
  error: string | null;
  startedAt: number;
  heartbeatAt: number;
  leaseExpiresAt: number;
  finishedAt: number | null;
  result: Ev | null;
  detail: Json | null;
  id?: number;
}

export const runTraceId = (r: Run) => traceId(r.worker, r.job.id!, r.attempt);

export interface Chunk {
  entities: EntityStory[];
  events: Ev[];
  jobs: Job[];
  runs: Run[];
  counts: Record<Fate, number> & { retries: number; bursts: number };
}

export interface Plan {
  index: number;
  fate: Fate;
  step: number; // 1..3: the step where a non-completed story stops
  retries: [number, number, number];
  bursts: number[]; // events per burst
}

const SAMPLES = [
  'Sales contract',
  'Rental agreement',
  'Supplier invoice',
  'Shareholder minutes',
  'Confidentiality agreement',
  'Shipping note',
  'Notarial deed',
  'Compliance report',
  'Payroll statement',
  'Insurance policy',
];
const DOMAIN = [
  'document.viewed',
  'document.viewed',
  'document.viewed',
  'document.downloaded',
  'document.commented',
  'document.shared',
  'document.tagged',
] as const;
const CHANNELS = ['web', 'api', 'mobile', 'email'];
const TAGS = ['q1', 'q2', 'q3', 'q4', 'legal', 'finance', 'urgent', 'archive'];
const RETRY_ERRORS: Record<Step, string> = {
  protect: 'RetryableError: document store temporarily unavailable (simulated)',
  tsa: 'RetryableError: time-stamp authority unavailable (simulated)',
  anchor: 'RetryableError: anchor batch lock timed out (simulated)',
};
const PRECONDITION_ERRORS: Record<Step, string> = {
  protect: 'PreconditionError: document.created has no string "content" to protect',
  tsa: 'PreconditionError: no protect.succeeded result to timestamp',
  anchor: 'PreconditionError: no protect.succeeded result to anchor',
};

/** Everything a chunk needs from outside: the options, "now", the worker ids and the proof makers. */
export interface StoryContext {
  o: LoadOptions;
  nowUs: number;
  workers: string[];
  creator: string;
  sha256(text: string): string;
  stamp(hash: string, entityId: string, atUs: number): Json;
  anchor(batch: { id: string; sha256: string }[]): Map<string, Json>;
}

export class EntityStory {
  readonly events: Ev[] = [];
  readonly jobs: Job[] = [];
  readonly runs: Run[] = [];
  t: number;
  constructor(
    readonly index: number,
    readonly id: string,
    readonly createdAt: number,
    readonly rng: Rng,
    readonly cx: StoryContext,
  ) {
    this.t = createdAt;
  }

  /** Moves the entity's clock on by min..max milliseconds (µs resolution). */
  wait(minMs: number, maxMs: number): number {
    this.t += Math.round((minMs + this.rng.next() * (maxMs - minMs)) * MS) + 1;
    return this.t;
  }

  append(kind: string, payload: Ev['payload'], actor: string, causation: Ev | null = null, run: Run | null = null): Ev {
    const ev: Ev = {
      ent: this,
      seq: this.events.length + 1,
      kind,
      payload,
      causation,
      run,
      actor,
      t: this.wait(0, 0.2),
    };
    this.events.push(ev);
    return ev;
  }

  /** The gateway: a job in the queue, as canon.enqueue_job writes it. */
  enqueue(lane: Job['lane'], type: string, source: Ev, payload: Json, dedupeKey: string | null): Job {
    const job: Job = {
      ent: this,
      lane,
      type,
      status: 'queued',
      payload,
      attempts: 0,
      maxAttempts: lane === 'decision' ? DECIDE_MAX_ATTEMPTS : EXEC_MAX_ATTEMPTS,
      runAt: source.t,
      lockedBy: null,
      lockedAt: null,
      heartbeatAt: null,
      leaseExpiresAt: null,
      dedupeKey,
      lastRun: null,
      source,
      lastError: null,
      lastReason: null,
      createdAt: source.t,
      updatedAt: source.t,
      finishedAt: null,
    };
    this.jobs.push(job);
    return job;
  }

  /** canon.claim_jobs: the job running under a worker, with its run row. */
  claim(job: Job, afterMs: [number, number]): Run {
    const t = Math.max(this.wait(afterMs[0], afterMs[1]), job.runAt + 1);
    this.t = t;
    const worker = this.rng.pick(this.cx.workers);
    job.attempts++;
    job.status = 'running';
    job.lockedBy = worker;
    job.lockedAt = t;
    job.heartbeatAt = t;
    job.leaseExpiresAt = t + (job.lane === 'decision' ? DECIDE_TIMEOUT : EXEC_TIMEOUT);
    job.updatedAt = t;
    const run: Run = {
      job,
      attempt: job.attempts,
      worker,
      status: 'running',
      reason: null,
      error: null,
      startedAt: t,
      heartbeatAt: t,
      leaseExpiresAt: job.leaseExpiresAt,
      finishedAt: null,
      result: null,
      detail: null,
    };
    job.lastRun = run;
    this.runs.push(run);
    return run;
  }

  finish(run: Run, status: 'succeeded' | 'failed', reason: string | null = null, error: string | null = null): void {
    run.status = status;
    run.reason = reason;
    run.error = error;
    run.finishedAt = this.t;
    const job = run.job;
    job.updatedAt = this.t;
    job.lockedBy = null;
    if (status === 'succeeded') {
      job.status = 'succeeded';
      job.finishedAt = this.t;
    }
  }

  /** A decision job for `source` and its run: requires `step` (with its job) or decides done. */
  decide(
    source: Ev,
    what: { require?: Step; done?: 'completed' | 'failed'; flags: Record<string, boolean> },
  ): Job | null {
    const job = this.enqueue('decision', 'decide', source, {}, null);
    const run = this.claim(job, [2, 40]);
    this.wait(0.5, 6);
    const historySeq = this.events.length;
    let exec: Job | null = null;
    if (what.require) {
      const type = what.require;
      const dedupe = `${this.id}:${type}:1`;
      const req = this.append(
        requiredKind(type),
        () => ({
          job_type: type,
          ordinal: 1,
          dedupe_key: dedupe,
          payload: {},
          flags: what.flags,
          decision_job_id: job.id!,
        }),
        run.worker,
        job.source,
        run,
      );
      exec = this.enqueue('execution', type, req, { flags: what.flags }, dedupe);
    }
    run.detail = {
      required: what.require ? [what.require] : [],
      skipped: [],
      done: !!what.done,
      outcome: what.done ?? null,
      flags: what.flags,
      history_seq: historySeq,
    };
    this.finish(run, 'succeeded');
    return exec;
  }

  /** One failed attempt that goes back to the queue after canon.backoff_seconds with the example pipeline's backoff. */
  failAttempt(run: Run, reason: string, error: string): void {
    this.finish(run, 'failed', reason, error);
    const job = run.job;
    job.status = 'queued';
    job.lockedAt = null;
    job.heartbeatAt = null;
    job.leaseExpiresAt = null;
    job.lastError = error;
    job.lastReason = reason;
    const backoff = backoffSeconds(EXEC_BACKOFF, job.attempts, this.rng.next());
    job.runAt = this.t + Math.round(backoff * SEC);
  }

  /** canon.bury_job: the job dead with its reason, and exactly one `<type>.failed` event. */
  bury(run: Run, reason: string, error: string, actor: string): Ev {
    const job = run.job;
    job.status = 'failed';
    job.finishedAt = this.t;
    job.lockedBy = null;
    job.lastReason = reason;
    job.lastError = error;
    job.updatedAt = this.t;
    return this.append(
      `${job.type}.failed`,
      () => ({ job_id: job.id!, attempts: job.attempts, reason, error }),
      actor,
      job.source,
      run,
    );
  }

  /** Runs an execution job to success after `failures` failed attempts; returns its result event. */
  succeed(job: Job, failures: number, result: Json): Ev {
    for (let i = 0; i < failures; i++) {
      const r = this.claim(job, [1, 30]);
      this.wait(1, 20);
      this.failAttempt(r, 'handler_error', RETRY_ERRORS[job.type as Step]);
    }
    const run = this.claim(job, [1, 30]);
    this.wait(0.2, job.type === 'anchor' ? 12 : 5);
    const ev = this.append(
      `${job.type}.succeeded`,
      () => ({ job_id: job.id!, attempt: run.attempt, result }),
      run.worker,
      job.source,
      run,
    );
    run.result = ev;
    this.finish(run, 'succeeded');
    return ev;
  }
}

const usedFlags = (step: Step | 'done'): Record<string, boolean> => (step === 'protect' ? {} : { [TSA_FLAG]: true });

function coreCounts(p: Pick<Plan, 'fate' | 'step'>): { events: number; jobs: number; runs: number } {
  const s = p.step;
  switch (p.fate) {
    case 'completed':
      return { events: CORE_PER_ENTITY, jobs: CORE_PER_ENTITY, runs: CORE_PER_ENTITY };
    case 'dead_max_attempts':
    case 'dead_ttl':
      return { events: 2 * s + 1, jobs: 2 * s + 1, runs: 2 * s + EXEC_MAX_ATTEMPTS };
    case 'dead_handler':
    case 'dead_precondition':
      return { events: 2 * s + 1, jobs: 2 * s + 1, runs: 2 * s + 1 };
    case 'stuck':
    case 'retry_scheduled':
      return { events: 2 * s, jobs: 2 * s, runs: 2 * s };
    case 'queued_exec':
      return { events: 2 * s, jobs: 2 * s, runs: 2 * s - 1 };
    case 'queued_decision':
      return { events: 1, jobs: 1, runs: 0 };
  }
}

/** Splits `total` over weighted slots exactly: floors of the proportional shares, the rest to the largest remainders. */
function apportion(total: number, weights: number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (total <= 0 || sum <= 0) return weights.map(() => 0);
  const ideal = weights.map((w) => (w / sum) * total);
  const out = ideal.map(Math.floor);
  let rest = total - out.reduce((a, b) => a + b, 0);
  const order = ideal.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; rest > 0; k = (k + 1) % order.length, rest--) out[order[k][1]]++;
  return out;
}

/**
 * Decides each entity's fate, retries and bursts so that the chunk's totals are exactly its
 * budget. `maturity` (0..1) is how much of its ten active days an entity has lived: a
 * document created yesterday has had a tenth of the later activity of one created last month,
 * so the ledger's rate is steady over time instead of piling up in the last day.
 */
export function planChunk(
  rng: Rng,
  first: number,
  count: number,
  budget: { events: number; jobs: number; runs: number },
  fates: Record<keyof typeof FATES, number>,
  maturity: (index: number) => number = () => 1,
): Plan[] {
  const plans: Plan[] = Array.from({ length: count }, (_, i) => ({
    index: first + i,
    fate: 'completed' as Fate,
    step: 3,
    retries: [0, 0, 0] as [number, number, number],
    bursts: [] as number[],
  }));
  const slots = rng.shuffle(plans.map((_, i) => i));
  let k = 0;
  for (const [fate, n] of Object.entries(fates) as [keyof typeof FATES, number][]) {
    for (let j = 0; j < n && k < slots.length; j++, k++) {
      const p = plans[slots[k]];
      p.fate = fate;
      p.step = fate === 'queued_decision' ? 1 : rng.int(1, 3);
    }
  }
  const core = plans.map(coreCounts);
  const sum = (f: (c: { events: number; jobs: number; runs: number }) => number) => core.reduce((a, c) => a + f(c), 0);
  const eligible = plans
    .map((p, i) => [p, i] as const)
    .filter(([p]) => p.fate === 'completed' || p.fate.startsWith('dead_'));
  const burstJobs = Math.max(0, budget.jobs - sum((c) => c.jobs));
  const perEntity = apportion(
    burstJobs,
    eligible.map(([p]) => (0.2 + rng.exp(1)) * Math.max(0.01, maturity(p.index))),
  );
  const burstEvents = Math.max(burstJobs, budget.events - sum((c) => c.events));
  const sizes = apportion(
    burstEvents - burstJobs,
    Array.from({ length: burstJobs }, () => 0.1 + rng.exp(1)),
  );
  let b = 0;
  eligible.forEach(([p], j) => {
    for (let n = 0; n < perEntity[j]; n++) p.bursts.push(1 + sizes[b++]);
  });
  // failed attempts that were retried and then succeeded: what the runs budget has left
  const completed = plans.filter((p) => p.fate === 'completed');
  let retries = Math.max(0, budget.runs - sum((c) => c.runs) - burstJobs);
  const attemptsLeft = retries * 50; // retries stop only when every completed job already has 3
  for (let guard = 0; retries > 0 && completed.length && guard < attemptsLeft; guard++) {
    const p = rng.pick(completed);
    const s = rng.next() < 0.6 ? 1 : rng.int(0, 2); // the time-stamp authority is the flaky one
    if (p.retries[s] < 3) {
      p.retries[s]++;
      retries--;
    }
  }
  return plans;
}

function domainEvent(e: EntityStory): { kind: string; payload: Json; actor: string } {
  const kind = e.rng.pick(DOMAIN);
  const by = `user-${e.rng.int(1, 5000)}`;
  const payload: Json =
    kind === 'document.commented'
      ? { by, text: e.rng.pick(['Looks good', 'Please check clause 4', 'Approved', 'Needs a second signature']) }
      : kind === 'document.shared'
        ? { by, with: `user-${e.rng.int(1, 5000)}` }
        : kind === 'document.tagged'
          ? { by, tag: e.rng.pick(TAGS) }
          : { by, via: e.rng.pick(CHANNELS) };
  return { kind, payload, actor: by };
}

/** Builds the chunk's stories; ids and positions are assigned by `number`. */
export function buildChunk(cx: StoryContext, plans: Plan[]): Chunk {
  const { o, nowUs } = cx;
  const span = o.days * 86_400 * SEC;
  const start = nowUs - span;
  const entities: EntityStory[] = [];
  const counts = Object.fromEntries([...Object.keys(FATES), 'completed'].map((f) => [f, 0])) as Chunk['counts'];
  counts.retries = 0;
  counts.bursts = 0;
  const toAnchor: { e: EntityStory; job: Job; sha: string; failures: number }[] = [];
  for (const p of plans) {
    const rng = new Rng(o.seed, 'entity', p.index);
    const inFlight = !(p.fate === 'completed' || p.fate.startsWith('dead_'));
    // entities are created in id order over the span, up to two hours ago; the ones still in
    // flight were created in the last minutes (a live system's backlog is recent)
    const t0 = inFlight
      ? nowUs - Math.round((p.fate === 'stuck' ? rng.int(120, 3600) : rng.int(30, 300)) * SEC)
      : start + Math.round(((p.index + rng.next()) / o.entities) * (span - 2 * 3600 * SEC));
    const e = new EntityStory(p.index, entityId(o, p.index), t0, rng, cx);
    entities.push(e);
    counts[p.fate]++;
    counts.retries += p.retries[0] + p.retries[1] + p.retries[2];
    counts.bursts += p.bursts.length;
    const content = `${rng.pick(SAMPLES)} ${e.id}: ${rng.hex(16)}`;
    let src = e.append('document.created', { content }, `ingest-${rng.int(1, 4)}`);
    if (p.fate === 'queued_decision') {
      e.enqueue('decision', 'decide', src, {}, null);
      continue;
    }
    const sha = cx.sha256(content);
    for (let s = 1; s <= p.step; s++) {
      const step = STEPS[s - 1];
      const job = e.decide(src, { require: step, flags: usedFlags(step) })!;
      const last = s === p.step;
      if (last && p.fate !== 'completed') {
        storyEnd(e, job, p.fate);
        break;
      }
      if (step === 'anchor') {
        toAnchor.push({ e, job, sha, failures: p.retries[2] });
        break; // the anchor result needs the chunk's batches: finished below
      }
      const result: Json =
        step === 'protect' ? { sha256: sha, bytes: Buffer.byteLength(content) } : cx.stamp(sha, e.id, e.t);
      src = e.succeed(job, p.retries[s - 1], result);
    }
  }
  // anchors: batches of up to 64 documents protected around the same time, as the handler makes them
  for (let i = 0; i < toAnchor.length; i += 64) {
    const batch = toAnchor.slice(i, i + 64);
    const proofs = cx.anchor(batch.map((a) => ({ id: a.e.id, sha256: a.sha })));
    for (const a of batch) {
      const ev = a.e.succeed(a.job, a.failures, proofs.get(a.e.id)!);
      a.e.decide(ev, { done: 'completed', flags: usedFlags('done') });
    }
  }
  // entities[i] is the story of plans[i]
  for (const [i, e] of entities.entries()) addBursts(e, plans[i].bursts, nowUs);
  return number(entities, counts);
}

/** How a story that does not complete ends, at the job of its last step. */
function storyEnd(e: EntityStory, job: Job, fate: Fate): void {
  const step = job.type as Step;
  if (fate === 'queued_exec') return;
  if (fate === 'stuck') {
    const run = e.claim(job, [1, 30]);
    // a few heartbeats, then nothing: the worker died or froze
    run.heartbeatAt = job.heartbeatAt = run.startedAt + e.rng.int(0, 3) * 7 * SEC;
    run.leaseExpiresAt = job.leaseExpiresAt = run.heartbeatAt + EXEC_TIMEOUT;
    return;
  }
  if (fate === 'retry_scheduled') {
    e.t = Math.max(e.t, e.cx.nowUs - 20 * SEC);
    const run = e.claim(job, [1, 30]);
    e.wait(1, 20);
    e.failAttempt(run, 'handler_error', RETRY_ERRORS[step]);
    job.runAt = e.cx.nowUs + e.rng.int(5, 30) * SEC; // backoff still running when the load ends
    return;
  }
  let failed: Ev;
  if (fate === 'dead_max_attempts' || fate === 'dead_ttl') {
    for (let a = 1; a < EXEC_MAX_ATTEMPTS; a++) {
      const r = e.claim(job, [1, 30]);
      e.wait(1, 20);
      e.failAttempt(r, 'handler_error', RETRY_ERRORS[step]);
    }
    const last = e.claim(job, [1, 30]);
    if (fate === 'dead_ttl') {
      const hb = last.heartbeatAt;
      e.wait(EXEC_TIMEOUT / MS + 1000, EXEC_TIMEOUT / MS + 60_000); // rescued by the next tick after the TTL
      const err = `no heartbeat since ${pgTime(hb)} from worker ${last.worker} (TTL exceeded)`;
      e.finish(last, 'failed', 'ttl_exceeded', err);
      failed = e.bury(last, 'ttl_exceeded', err, 'canon-rescuer');
    } else {
      e.wait(1, 20);
      e.finish(last, 'failed', 'handler_error', RETRY_ERRORS[step]);
      failed = e.bury(last, 'max_attempts_exceeded', RETRY_ERRORS[step], last.worker);
    }
  } else {
    const reason = fate === 'dead_handler' ? 'handler_error' : 'precondition_failed';
    const err =
      fate === 'dead_handler'
        ? `PermanentError: ${step} refused the document permanently (simulated)`
        : PRECONDITION_ERRORS[step];
    const run = e.claim(job, [1, 30]);
    e.wait(0.2, 5);
    e.finish(run, 'failed', reason, err);
    failed = e.bury(run, reason, err, run.worker);
  }
  e.decide(failed, { done: 'failed', flags: {} });
}

/** Later activity: bursts of ordinary events, each read by one decision that finds nothing to do. */
function addBursts(e: EntityStory, bursts: number[], nowUs: number): void {
  if (!bursts.length) return;
  const done = e.events.some((ev) => ev.kind === 'anchor.succeeded');
  const from = e.t + 60 * SEC;
  // within the entity's active days after the pipeline and before the last few minutes (never in the future)
  const until = Math.max(from, Math.min(from + ACTIVE_DAYS * 86_400 * SEC, nowUs - 5 * 60 * SEC));
  const starts = bursts.map(() => from + Math.round(e.rng.next() * (until - from))).sort((a, b) => a - b);
  bursts.forEach((n, i) => {
    e.t = Math.max(e.t + SEC, starts[i]);
    let first: Ev | undefined;
    for (let k = 0; k < n; k++) {
      const d = domainEvent(e);
      const ev = e.append(d.kind, d.payload, d.actor);
      first ??= ev;
      e.wait(0.5, 15);
    }
    e.decide(first!, { done: done ? 'completed' : 'failed', flags: done ? usedFlags('done') : {} });
  });
}

/** Numbers events, jobs and runs in time order (what sequences would have given), from 0; the loader adds offsets. */
function number(entities: EntityStory[], counts: Chunk['counts']): Chunk {
  const events = entities
    .flatMap((e) => e.events)
    .sort((a, b) => a.t - b.t || a.ent.index - b.ent.index || a.seq - b.seq);
  const jobs = entities.flatMap((e) => e.jobs).sort((a, b) => a.createdAt - b.createdAt || a.ent.index - b.ent.index);
  const runs = entities
    .flatMap((e) => e.runs)
    .sort((a, b) => a.startedAt - b.startedAt || a.job.ent.index - b.job.ent.index);
  return { entities, events, jobs, runs, counts };
}
