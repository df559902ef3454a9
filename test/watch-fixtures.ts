// Fixed snapshots for the dashboard's component tests: a deployment with a dead poison job,
// one retrying failure, two workers (one stale), a killed flag, an open breaker and a paused
// type. `big` multiplies every list so the row budgets are exercised.
import { Chalk } from 'chalk';
import { DEFAULT_THRESHOLDS } from '../src/observe/thresholds.js';
import { buildTree, type Chain } from '../src/observe/trace.js';
import type { Health } from '../src/observe/types.js';
import type { Focus, WatchSnapshot } from '../src/tui/snapshot.js';
import type { Prepared, WatchAction, WatchSource } from '../src/tui/source.js';

/** Fixture times are relative to the real clock: the App measures ages against Date.now(). */
export const NOW = Date.now();
const at = (s: number) => new Date(NOW - s * 1000).toISOString();
export const plain = new Chalk({ level: 0 });
export const POISON_ERROR = 'RetryableError: poison document: this handler always fails';

export function health(over: Partial<Health> = {}): Health {
  return {
    jobs_queued: { by_type: { protect: 3, tsa: 1 }, total: 4 },
    jobs_processing: { count: 2, avg_age_seconds: 1.5 },
    stuck_count: 0,
    dead_last_24h: 1,
    estimated_lag_seconds: 2.5,
    runtime_version: 'canon-1',
    status: 'WARNING',
    problems: [
      {
        alert: 'CanonDeadJobs',
        severity: 'warning',
        summary: '1 dead job in the last 24 h',
        runbook: 'runbooks/dead-jobs.md',
      },
    ],
    checked_at: new Date(NOW).toISOString(),
    event_to_job_gap: 0,
    event_to_job_gap_by_lane: { decision: 0, execution: 0 },
    oldest_queued_age_seconds: { protect: 2.5 },
    jobs_ready: { total: 3, by_lane: { execution: 3 } },
    throughput: {
      last_5m: { runs_finished: 50, succeeded: 48, failed: 2, per_minute: 10, success_rate: 0.96 },
      last_1h: { runs_finished: 400, succeeded: 388, failed: 12, per_minute: 6.667, success_rate: 0.97 },
    },
    workers: { alive: 1, stale: 1, by_role: { work: 1 } },
    gateway: { mode: 'strict', bypass_count: 0, bypass_last_24h: 0 },
    core_trigger_enabled: true,
    decision_runs_in_activity_window: 100,
    duplicate_event_groups: 0,
    succeeded_without_trace: 0,
    ...over,
  };
}

const W1 = 'work-0a1b2c3d-1111-4222-8333-444455556666';
const W2 = 'execute-9f8e7d6c-1111-4222-8333-444455556666';

export function chain(): Chain {
  const ev = (position: number, seq: number, kind: string, trace_id: string | null, s: number) => ({
    position,
    entity_id: 'poison-1',
    seq,
    kind,
    payload: {},
    correlation_id: 'poison-1',
    causation_id: null,
    trace_id,
    actor: trace_id ?? 'alice',
    created_at: at(s),
  });
  const job = (
    id: number,
    lane: 'decision' | 'execution',
    type: string,
    status: string,
    attempts: number,
    max: number,
    src: number,
    extra = {},
  ) => ({
    id,
    lane,
    type,
    entity_id: 'poison-1',
    status,
    attempts,
    max_attempts: max,
    run_at: at(100),
    created_at: at(100),
    finished_at: status === 'failed' || status === 'succeeded' ? at(60) : null,
    locked_by: null,
    heartbeat_at: null,
    correlation_id: 'poison-1',
    trace_id: `${W1}-${id}-${attempts}`,
    source_event_position: src,
    via_gateway: true,
    hold_reason: null,
    last_error: null,
    last_reason: null,
    ...extra,
  });
  const run = (id: number, job_id: number, attempt: number, status: string, extra = {}) => ({
    id,
    job_id,
    attempt,
    lane: job_id === 10 ? 'decision' : 'execution',
    type: job_id === 10 ? 'decide' : 'protect',
    worker_id: W1,
    trace_id: `${W1}-${job_id}-${attempt}`,
    status,
    reason: null,
    error: null,
    started_at: at(90 - attempt),
    heartbeat_at: at(90 - attempt),
    finished_at: at(89 - attempt),
    result_event_position: null,
    ...extra,
  });
  return {
    query: 'poison-1',
    matched_by: 'entity',
    events: [
      ev(1, 1, 'document.created', null, 100),
      ev(2, 2, 'job.protect.required', `${W1}-10-1`, 95),
      ev(3, 3, 'protect.failed', `${W1}-11-2`, 60),
    ],
    jobs: [
      job(10, 'decision', 'decide', 'succeeded', 1, 10, 1),
      job(11, 'execution', 'protect', 'failed', 2, 2, 2, {
        last_error: POISON_ERROR,
        last_reason: 'max_attempts_exceeded',
      }),
    ],
    runs: [
      run(1, 10, 1, 'succeeded'),
      run(2, 11, 1, 'failed', { reason: 'handler_error', error: POISON_ERROR }),
      run(3, 11, 2, 'failed', { reason: 'handler_error', error: POISON_ERROR }),
    ],
    actions: [],
    pruned: [],
  } as Chain;
}

export function snapshot(focus: Focus = {}, opts: { big?: boolean; health?: Partial<Health> } = {}): WatchSnapshot {
  const n = opts.big ? 40 : 1;
  const types = [
    {
      name: 'decide',
      lane: 'decision' as const,
      paused: false,
      paused_by: null,
      pause_reason: null,
      paused_at: null,
      max_attempts: 10,
      breaker: 'closed' as const,
      queued: 0,
      running: 0,
      dead_24h: 0,
      oldest_ready: null,
    },
    {
      name: 'protect',
      lane: 'execution' as const,
      paused: false,
      paused_by: null,
      pause_reason: null,
      paused_at: null,
      max_attempts: 2,
      breaker: 'closed' as const,
      queued: 3,
      running: 2,
      dead_24h: 1,
      oldest_ready: 2.5,
    },
    {
      name: 'tsa',
      lane: 'execution' as const,
      paused: true,
      paused_by: 'alice',
      pause_reason: 'TSA outage',
      paused_at: at(300),
      max_attempts: 5,
      breaker: 'open' as const,
      queued: 1,
      running: 0,
      dead_24h: 0,
      oldest_ready: null,
    },
    ...Array.from({ length: opts.big ? 30 : 0 }, (_, i) => ({
      name: `extra_${i}`,
      lane: 'execution' as const,
      paused: false,
      paused_by: null,
      pause_reason: null,
      paused_at: null,
      max_attempts: 3,
      breaker: 'closed' as const,
      queued: i,
      running: 0,
      dead_24h: 0,
      oldest_ready: null,
    })),
  ];
  const failures = Array.from({ length: 2 * n }, (_, i) => ({
    run_id: 100 + i,
    job_id: i === 0 ? 11 : 12 + i,
    type: 'protect',
    lane: 'execution',
    entity_id: i === 0 ? 'poison-1' : `doc-${i}`,
    attempt: i === 0 ? 2 : 1,
    max_attempts: 2,
    reason: 'handler_error',
    error: i === 0 ? POISON_ERROR : 'RetryableError: time-stamp authority unavailable',
    trace_id: `${W1}-${i === 0 ? 11 : 12 + i}-1`,
    finished_at: at(60 + i),
    job_status: i === 0 ? 'failed' : 'queued',
    dead: i === 0,
  }));
  const workers = Array.from({ length: 2 * n }, (_, i) => ({
    id:
      i % 2
        ? W2.replace('9f8e7d6c', `9f8e${String(i).padStart(4, '0')}`)
        : W1.replace('0a1b2c3d', `0a1b${String(i).padStart(4, '0')}`),
    role: i % 2 ? 'execute' : 'work',
    lanes: i % 2 ? ['execution'] : ['decision', 'execution'],
    in_flight: 1,
    concurrency: 4,
    pid: 1000 + i,
    host: 'box',
    pipeline: 'example',
    version: '0.1.0',
    started_at: at(3600),
    heartbeat_at: at(i % 2 ? 120 : 1),
    heartbeat_age: i % 2 ? 120 : 1,
    alive: i % 2 === 0,
  }));
  const flags = Array.from({ length: n }, (_, i) => ({
    name: i === 0 ? 'D1_RUN_TSA_ENABLED' : `FLAG_${i}`,
    enabled: i !== 0,
    rollout_percent: 100,
    strategy: 'all' as const,
    killed_at: i === 0 ? at(30) : null,
    killed_by: i === 0 ? 'bob' : null,
    updated_at: at(30),
    updated_by: 'bob',
    held_jobs: i === 0 ? 2 : 0,
    rollout: null,
  }));
  const minutes = Array.from({ length: 30 }, (_, i) => ({
    minute: new Date(NOW - (29 - i) * 60_000).toISOString(),
    ok: i * 2,
    failed: i % 7 === 0 ? 1 : 0,
    lag: i === 29 ? 2.5 : i % 5,
  }));
  const c = chain();
  return {
    database: 'canon@db.example:5432/canon',
    fetched_at: new Date().toISOString(),
    query_ms: 3.2,
    thresholds: { ...DEFAULT_THRESHOLDS },
    health: health(opts.health),
    types,
    minutes,
    workers,
    workers_total: workers.length,
    failures,
    flags,
    breakers: [
      {
        job_type: 'tsa',
        state: 'open',
        failure_count: 10,
        opened_at: at(20),
        next_attempt_at: at(-10),
        probe_job_id: null,
        reason: '10 consecutive failures',
      },
    ],
    focus_type: focus.type
      ? {
          type: focus.type,
          known: focus.type !== 'nope',
          queued: { n: 3, ready: 3, held: 0 },
          dead: { n: 1, last_24h: 1 },
          jobs: [
            {
              state: 'dead',
              id: 11,
              entity_id: 'poison-1',
              status: 'failed',
              attempts: 2,
              max_attempts: 2,
              run_at: at(100),
              locked_by: null,
              locked_at: null,
              heartbeat_at: null,
              hold_reason: null,
              last_reason: 'max_attempts_exceeded',
              last_error: POISON_ERROR,
              finished_at: at(60),
              trace_id: `${W1}-11-2`,
              created_at: at(100),
            },
            {
              state: 'running',
              id: 20,
              entity_id: 'doc-20',
              status: 'running',
              attempts: 1,
              max_attempts: 2,
              run_at: at(5),
              locked_by: W1,
              locked_at: at(2),
              heartbeat_at: at(1),
              hold_reason: null,
              last_reason: null,
              last_error: null,
              finished_at: null,
              trace_id: `${W1}-20-1`,
              created_at: at(5),
            },
            {
              state: 'queued',
              id: 21,
              entity_id: 'doc-21',
              status: 'queued',
              attempts: 0,
              max_attempts: 2,
              run_at: at(3),
              locked_by: null,
              locked_at: null,
              heartbeat_at: null,
              hold_reason: null,
              last_reason: null,
              last_error: null,
              finished_at: null,
              trace_id: null,
              created_at: at(3),
            },
          ],
        }
      : null,
    focus_entity: focus.entity
      ? focus.entity === 'poison-1'
        ? { entity: 'poison-1', exists: true, chain: c, trace: buildTree(c) }
        : { entity: focus.entity, exists: false, chain: null, trace: null }
      : null,
  };
}

/** A source on fixtures that records what the App asked for and did. */
export function fakeSource(opts: { big?: boolean; fail?: () => Error | undefined; health?: Partial<Health> } = {}) {
  const calls: Focus[] = [];
  const prepared: WatchAction[] = [];
  const ran: WatchAction[] = [];
  const source: WatchSource = {
    async snapshot(f) {
      calls.push(f);
      const e = opts.fail?.();
      if (e) throw e;
      return snapshot(f, opts);
    },
    async prepare(a): Promise<Prepared> {
      prepared.push(a);
      const what =
        a.kind === 'retry-type'
          ? `retry 1 dead ${a.type} job`
          : a.kind === 'kill'
            ? `kill flag ${a.flag}`
            : a.kind === 'pause'
              ? `${a.pause ? 'pause' : 'resume'} ${a.type}`
              : `${a.kind} job #${a.job.id}`;
      const run = async () => {
        ran.push(a);
        return `done: ${what}`;
      };
      return { prompt: `${what}?`, run };
    },
  };
  return { source, calls, prepared, ran };
}
