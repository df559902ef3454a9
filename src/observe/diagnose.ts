// `canon diagnose <entity_id>`: the RFC's three runbooks (not enqueued; enqueued and not
// executed; executed without a result event) and the usual suspects (a dead job, a stuck
// run, a paused type, an open breaker, no live workers, a flag that is off) applied to one
// entity, worst first. One verdict, the evidence for it, and the next command to run.
import type pg from 'pg';
import { requiredType } from '../ledger.js';
import { inSnapshot } from '../proof/snapshot.js';
import { DIAGNOSE_SQL } from '../sql/diagnose.js';
import { DEFAULT_THRESHOLDS, type Thresholds } from './thresholds.js';
import { type Chain, type ChainRun, loadChain } from './trace.js';

export type Verdict =
  | 'not_enqueued'
  | 'executed_no_event'
  | 'dead_job'
  | 'stuck'
  | 'paused'
  | 'held'
  | 'breaker_open'
  | 'no_workers'
  | 'enqueued_not_executed'
  | 'retrying'
  | 'in_progress'
  | 'waiting_on_flag'
  | 'done'
  | 'idle';

export const PROBLEM_VERDICTS: Verdict[] = [
  'not_enqueued',
  'executed_no_event',
  'dead_job',
  'stuck',
  'paused',
  'held',
  'breaker_open',
  'no_workers',
  'enqueued_not_executed',
];

/** The page for each verdict; a healthy verdict names the page for when it stays that way. */
const RUNBOOK: Record<Verdict, string> = {
  not_enqueued: 'runbooks/not-enqueued.md',
  executed_no_event: 'runbooks/executed-no-event.md',
  dead_job: 'runbooks/dead-jobs.md',
  stuck: 'runbooks/stuck-jobs.md',
  paused: 'runbooks/job-type-paused.md',
  held: 'runbooks/enqueued-not-executed.md',
  breaker_open: 'runbooks/breaker-open.md',
  no_workers: 'runbooks/enqueued-not-executed.md',
  enqueued_not_executed: 'runbooks/enqueued-not-executed.md',
  retrying: 'runbooks/dead-jobs.md',
  in_progress: 'runbooks/enqueued-not-executed.md',
  waiting_on_flag: 'runbooks/README.md',
  done: 'runbooks/README.md',
  idle: 'runbooks/README.md',
};

export interface Diagnosis {
  entity_id: string;
  verdict: Verdict;
  problem: boolean;
  summary: string;
  evidence: string[];
  next: string[];
  runbook: string;
  /** the facts the verdicts start from: the core trigger and, per lane, the live workers */
  core_trigger_enabled: boolean;
  workers: Record<string, { alive: number; last_seen: LastWorker | null }>;
  /** the health KPI's grace, used only to word how unusual a finding is */
  grace_seconds: number;
  /** every finding, worst first; the verdict is the first */
  findings: { verdict: Verdict; summary: string; job_id?: number; event_position?: number }[];
}

interface LastWorker {
  id: string;
  role: string;
  seen_at: string;
  stopped_at: string | null;
}

interface Ctx {
  now: number;
  types: Record<
    string,
    {
      lane: string;
      paused: boolean;
      pause_reason: string | null;
      timeout_seconds: number;
      breaker_open: boolean;
      breaker_next_attempt_at: string | null;
    }
  >;
  workers_by_lane: Record<string, number>;
  /** per lane, the worker heard from last, alive or not */
  last_worker_by_lane: Record<string, LastWorker>;
  core_trigger_enabled: boolean;
  flags: { name: string; enabled: boolean; rollout_percent: number; on_for_entity: boolean }[];
  /** positions of the entity's events that the gap rule finds without their job (src/sql/diagnose.ts) */
  gap: Set<number>;
  /** the entity's derived status (entity_status), which a prune keeps */
  status: string | null;
}

interface Finding {
  verdict: Verdict;
  summary: string;
  evidence: string[];
  next: string[];
  job_id?: number;
  event_position?: number;
}

const age = (now: number, iso: string) => Math.max(0, (now - Date.parse(iso)) / 1000);
const secs = (s: number) =>
  s < 120 ? `${Math.round(s)}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`;

/**
 * How unusual a fact is, worded with the health KPI's grace. The grace decides nothing here:
 * a missing job is missing at once (the gateway creates it in the event's transaction) and a
 * lane without a live worker claims nothing however young the job is.
 */
const graceTail = (s: number, t: Thresholds, after = '') =>
  s <= t.gap_grace_seconds
    ? `, within the ${secs(t.gap_grace_seconds)} grace${after ? `; ${after}` : ''}`
    : `, past the ${secs(t.gap_grace_seconds)} grace`;
/** "event 5, 3s old, within the 60s grace; health counts it in event_to_job_gap after that" */
function eventWords(cx: Ctx, t: Thresholds, e: { position: number; created_at: string }): string {
  const a = age(cx.now, e.created_at);
  return `event ${e.position}, ${secs(a)} old${graceTail(a, t, 'health counts it in event_to_job_gap after that')}`;
}

/** "no live decision worker: none has run yet" / "…: the last one, tick-…, stopped 2m ago" */
function noWorkerWords(cx: Ctx, lane: string): string {
  const w = cx.last_worker_by_lane[lane];
  if (!w) return `no live ${lane} worker: none has ever run against this database`;
  return w.stopped_at
    ? `no live ${lane} worker: the last one, ${w.id}, stopped ${secs(age(cx.now, w.stopped_at))} ago`
    : `no live ${lane} worker: the last one, ${w.id}, has not heartbeated for ${secs(age(cx.now, w.seen_at))} (dead or frozen)`;
}

function findings(ch: Chain, cx: Ctx, t: Thresholds): Finding[] {
  const out: Finding[] = [];
  const id = ch.query;
  const runsByJob = new Map<number, ChainRun[]>();
  for (const r of ch.runs) runsByJob.set(r.job_id, [...(runsByJob.get(r.job_id) ?? []), r]);
  const retried = new Set(ch.actions.filter((a) => a.action === 'retry').map((a) => a.job_id));
  const redrive = `canon jobs redrive ${id}`;

  // 1. not enqueued: an event the gap rule finds without its job, at once (the job would have
  // been created in the event's own transaction); the grace only words how long health has
  // been (or will be) counting it in event_to_job_gap
  const uncovered = ch.events.filter((e) => cx.gap.has(e.position));
  for (const e of uncovered) {
    const type = requiredType(e.kind);
    if (!type) continue;
    out.push({
      verdict: 'not_enqueued',
      summary: `${e.kind} (${eventWords(cx, t, e)}) has no ${type} job: the required job was never enqueued or was deleted`,
      evidence: [
        `event ${e.position} ${e.kind} at ${e.created_at} by ${e.actor}`,
        `no job has source_event_position = ${e.position}`,
        ...(cx.workers_by_lane.execution > 0 ? [] : [noWorkerWords(cx, 'execution')]),
      ],
      next: [redrive, `canon diagnose ${id}`],
      event_position: e.position,
    });
  }
  const undecided = uncovered.filter((e) => !requiredType(e.kind));
  if (undecided.length) {
    const e = undecided[0];
    const trig = cx.core_trigger_enabled
      ? 'the core trigger is enabled now, so it was off when the event was appended, or the event was written with triggers bypassed (replica mode, a restore by hand)'
      : 'the core trigger canon_core_trigger is DISABLED';
    const which =
      undecided.length === 1
        ? `${e.kind} (${eventWords(cx, t, e)}) has`
        : `${undecided.length} events (the first, ${e.kind} ${eventWords(cx, t, e)}) have`;
    out.push({
      verdict: 'not_enqueued',
      summary: `${which} no decision job: ${trig}`,
      evidence: [
        ...undecided.slice(0, 5).map((u) => `event ${u.position} ${u.kind} at ${u.created_at} by ${u.actor}`),
        ...(undecided.length > 5 ? [`and ${undecided.length - 5} more event(s)`] : []),
        `no decision job of ${id} came from these events or read them`,
        `core trigger canon_core_trigger: ${cx.core_trigger_enabled ? 'enabled' : 'DISABLED'}`,
        ...(cx.workers_by_lane.decision > 0 ? [] : [noWorkerWords(cx, 'decision')]),
      ],
      next: [...(cx.core_trigger_enabled ? [] : ['canon gateway trigger on']), redrive, `canon diagnose ${id}`],
      event_position: e.position,
    });
  }

  // 2. executed without a result event
  for (const j of ch.jobs) {
    if (j.lane !== 'execution' || (j.status !== 'succeeded' && j.status !== 'failed')) continue;
    const kind = `${j.type}.${j.status}`;
    const result = ch.events.find((e) => e.kind === kind && Number(e.payload.job_id) === j.id);
    if (!result) {
      const run = (runsByJob.get(j.id) ?? []).at(-1);
      out.push({
        verdict: 'executed_no_event',
        summary: `job #${j.id} ${j.type} is ${j.status} but the ledger has no ${kind} event for it`,
        evidence: [
          `job #${j.id} ${j.status} at ${j.finished_at}`,
          run
            ? `last run ${run.trace_id} ${run.status}, result_event_position ${run.result_event_position ?? 'null'}`
            : 'the job has no run at all (changed by hand?)',
          `no ${kind} event with payload job_id ${j.id}`,
        ],
        next: [`canon trace ${id}`, `canon trace ${id} --json   (every run of job #${j.id}, with its result position)`],
        job_id: j.id,
      });
    }
  }

  // 3. dead jobs nobody retried
  for (const j of ch.jobs) {
    if (j.status !== 'failed' || retried.has(j.id)) continue;
    out.push({
      verdict: 'dead_job',
      summary: `job #${j.id} ${j.type} is dead (${j.last_reason ?? 'unknown reason'} after ${j.attempts}/${j.max_attempts} attempts): ${(j.last_error ?? '').split('\n')[0].slice(0, 160)}`,
      evidence: [
        `job #${j.id} failed at ${j.finished_at}, reason ${j.last_reason}`,
        `last trace ${j.trace_id}`,
        `error: ${(j.last_error ?? '-').split('\n')[0].slice(0, 300)}`,
      ],
      next: [
        `canon jobs retry ${j.id} -m "<why it will work now>"`,
        `canon dead-jobs --correlation-id ${j.correlation_id}`,
      ],
      job_id: j.id,
    });
  }

  // 4. stuck: running past the type's TTL without heartbeat
  for (const j of ch.jobs) {
    if (j.status !== 'running' || !j.heartbeat_at) continue;
    const ttl = Number(cx.types[j.type]?.timeout_seconds ?? 300);
    const silent = age(cx.now, j.heartbeat_at);
    if (silent > ttl) {
      out.push({
        verdict: 'stuck',
        summary: `job #${j.id} ${j.type} is running with no heartbeat for ${secs(silent)} (TTL ${secs(ttl)}): worker ${j.locked_by} is dead or frozen`,
        evidence: [
          `job #${j.id} locked by ${j.locked_by}, last heartbeat ${j.heartbeat_at}`,
          `type ${j.type} timeout_seconds ${ttl}`,
          `trace ${j.trace_id}`,
        ],
        next: [
          'canon tick   (rescues runs past their TTL: retried, or dead with ttl_exceeded)',
          `canon diagnose ${id}`,
        ],
        job_id: j.id,
      });
    }
  }

  // 5. work waits in a lane no live worker serves: the first fact, however young the job is
  for (const lane of ['decision', 'execution']) {
    const waiting = ch.jobs.filter((j) => j.lane === lane && j.status === 'queued');
    if (!waiting.length || cx.workers_by_lane[lane] > 0) continue;
    const oldest = waiting.reduce((a, b) => (Date.parse(a.run_at) <= Date.parse(b.run_at) ? a : b));
    const ready = age(cx.now, oldest.run_at);
    const readyWords =
      Date.parse(oldest.run_at) > cx.now ? `due at ${oldest.run_at}` : `ready for ${secs(ready)}${graceTail(ready, t)}`;
    out.push({
      verdict: 'no_workers',
      summary: `${noWorkerWords(cx, lane)}; job #${oldest.id} ${oldest.type} waits (${readyWords})${waiting.length > 1 ? ` with ${waiting.length - 1} more` : ''}`,
      evidence: [
        `no worker serving lane ${lane} heartbeated in the last ${secs(t.worker_alive_seconds)}`,
        ...waiting.slice(0, 5).map((j) => `job #${j.id} ${j.type} queued, run_at ${j.run_at}`),
      ],
      next: [
        lane === 'decision'
          ? 'canon work decide   (or canon work; or canon tick from cron)'
          : 'canon work execute   (or canon work; or canon tick from cron)',
        'canon health',
      ],
      job_id: oldest.id,
    });
  }

  // 6-10. queued and not executing, and why
  for (const j of ch.jobs) {
    if (j.status !== 'queued') continue;
    const ty = cx.types[j.type];
    const waited = age(cx.now, j.run_at);
    const alive = cx.workers_by_lane[j.lane] > 0;
    const base = `job #${j.id} ${j.type} queued ${secs(age(cx.now, j.created_at))} ago`;
    const f = (verdict: Verdict, why: string, evidence: string[], next: string[]) =>
      out.push({
        verdict,
        summary: `${base}: ${why}`,
        evidence: [`job #${j.id} run_at ${j.run_at}, attempts ${j.attempts}/${j.max_attempts}`, ...evidence],
        next,
        job_id: j.id,
      });
    if (j.hold_reason) {
      // steering's kill switch holds jobs decided under a killed flag as `flag_killed:<flag>`
      const flag = /^flag_killed:(.+)$/.exec(j.hold_reason)?.[1];
      f(
        'held',
        flag ? `held because flag ${flag} was killed` : `held (${j.hold_reason})`,
        [`hold_reason: ${j.hold_reason}`],
        flag
          ? [`canon flags get ${flag}`, `canon flags release ${flag} --reason "<why it is safe again>"`]
          : [`canon trace ${id}`],
      );
    } else if (ty?.paused)
      f(
        'paused',
        `type ${j.type} is paused${ty.pause_reason ? ` (${ty.pause_reason})` : ''}`,
        [`job_types.${j.type}.paused = true`],
        [`canon jobs resume ${j.type}`],
      );
    else if (ty?.breaker_open)
      f(
        'breaker_open',
        `the ${j.type} breaker is open until ${ty.breaker_next_attempt_at}`,
        [`breakers.${j.type} open, next attempt ${ty.breaker_next_attempt_at}`],
        [`canon dead-jobs --type ${j.type}`, `canon breakers close ${j.type} --reason "<why it works again>"`],
      );
    else if (Date.parse(j.run_at) > cx.now)
      f(
        'retrying',
        `waiting to retry at ${j.run_at} after: ${(j.last_error ?? '').split('\n')[0].slice(0, 160)}`,
        [`last reason ${j.last_reason}`],
        [`canon trace ${id}`],
      );
    else if (!alive)
      continue; // the lane's no_workers finding above says it
    else if (waited > t.gap_grace_seconds)
      f(
        'enqueued_not_executed',
        `ready for ${secs(waited)} while ${cx.workers_by_lane[j.lane]} ${j.lane} worker(s) are alive`,
        [`live ${j.lane} workers: ${cx.workers_by_lane[j.lane]}`],
        ['canon health', 'canon watch'],
      );
    else
      f(
        'in_progress',
        `waiting for one of ${cx.workers_by_lane[j.lane]} live ${j.lane} worker(s) (ready for ${secs(waited)}${graceTail(waited, t)})`,
        [`live ${j.lane} workers: ${cx.workers_by_lane[j.lane]}`],
        [`canon trace ${id}`],
      );
  }
  for (const j of ch.jobs) {
    if (j.status === 'running' && !out.some((o) => o.job_id === j.id)) {
      out.push({
        verdict: 'in_progress',
        summary: `job #${j.id} ${j.type} is running on ${j.locked_by}`,
        evidence: [`trace ${j.trace_id}, last heartbeat ${j.heartbeat_at}`],
        next: [`canon trace ${id}`],
        job_id: j.id,
      });
    }
  }

  // 9. nothing to do: done, waiting on a flag, or idle
  const last = [...ch.runs].reverse().find((r) => r.lane === 'decision' && r.status === 'succeeded');
  const pruned = ch.pruned[0];
  if (!out.length && !last && pruned) {
    // its decisions were pruned: what the ledger and the kept status say
    const results = ch.events.filter((e) => /\.(succeeded|failed)$/.test(e.kind));
    const newest = results.at(-1) ?? ch.events.at(-1);
    out.push({
      verdict: 'done',
      summary: `done (${cx.status}): its jobs and runs were pruned ${pruned.last_pruned_at}; the ledger keeps its ${ch.events.length} events`,
      evidence: [
        `status ${cx.status} (canon status ${id}), kept through the prune by canon.entity_pruned`,
        `pruned: ${pruned.jobs_succeeded + pruned.jobs_failed + pruned.jobs_cancelled} jobs (${pruned.jobs_succeeded} succeeded, ${pruned.jobs_failed} failed, ${pruned.jobs_cancelled} cancelled), ${pruned.runs_succeeded + pruned.runs_failed + pruned.runs_cancelled} runs`,
        ...(pruned.dead_types.length ? [`dead when pruned: ${pruned.dead_types.join(', ')}`] : []),
        ...(newest
          ? [
              `newest ${results.length ? 'result' : 'event'}: ${newest.kind} (event ${newest.position}) at ${newest.created_at}`,
            ]
          : []),
      ],
      next: [`canon trace ${id}`],
    });
  }
  if (!out.length) {
    const detail = (last?.detail ?? {}) as { done?: boolean; flags?: Record<string, boolean>; outcome?: string | null };
    const offRead = Object.entries(detail.flags ?? {})
      .filter(([, on]) => !on)
      .map(([n]) => n);
    const offAll = cx.flags.filter((fl) => !fl.on_for_entity).map((fl) => fl.name);
    const flagsLine = offAll.length ? `flags off for ${id}: ${offAll.join(', ')}` : 'no flag is off for this entity';
    if (detail.done)
      out.push({
        verdict: 'done',
        summary: `done: the last decision (${last!.trace_id}) found nothing more to do${detail.outcome ? ` (${detail.outcome})` : ''}`,
        evidence: [flagsLine],
        next: [`canon trace ${id}`],
      });
    else if (offRead.length)
      out.push({
        verdict: 'waiting_on_flag',
        summary: `idle: the last decision required nothing and read ${offRead.join(', ')} as off`,
        evidence: [flagsLine, `last decision ${last!.trace_id}`],
        next: [`canon flags list`, `canon trace ${id}`],
      });
    else
      out.push({
        verdict: 'idle',
        summary: 'no queued, running or failed work and no gap',
        evidence: [flagsLine],
        next: [`canon trace ${id}`],
      });
  }
  return out;
}

const ORDER: Verdict[] = [
  'not_enqueued',
  'executed_no_event',
  'dead_job',
  'stuck',
  'no_workers',
  'held',
  'paused',
  'breaker_open',
  'enqueued_not_executed',
  'retrying',
  'in_progress',
  'waiting_on_flag',
  'done',
  'idle',
];

export async function diagnose(db: pg.Pool, entityId: string, t: Thresholds = DEFAULT_THRESHOLDS): Promise<Diagnosis> {
  // the chain and the context from one snapshot: a verdict "at once" must not come from a
  // job claimed or an event appended between two reads
  const { ch, r } = await inSnapshot(db, async (c) => ({
    ch: await loadChain(c, entityId, 'entity'),
    r: (await c.query(DIAGNOSE_SQL.context, [entityId, t.worker_alive_seconds])).rows[0],
  }));
  const cx: Ctx = {
    now: new Date(r.now).getTime(),
    types: r.types,
    workers_by_lane: r.workers_by_lane,
    last_worker_by_lane: r.last_worker_by_lane,
    core_trigger_enabled: r.core_trigger_enabled,
    flags: r.flags,
    gap: new Set(r.gap_positions),
    status: r.status,
  };
  const all = findings(ch, cx, t).sort((a, b) => ORDER.indexOf(a.verdict) - ORDER.indexOf(b.verdict));
  const top = all[0];
  const more = all.slice(1).filter((f) => PROBLEM_VERDICTS.includes(f.verdict));
  return {
    entity_id: entityId,
    verdict: top.verdict,
    problem: PROBLEM_VERDICTS.includes(top.verdict),
    summary: top.summary,
    evidence: [...top.evidence, ...more.map((f) => `also: ${f.summary}`)],
    next: top.next,
    runbook: RUNBOOK[top.verdict],
    core_trigger_enabled: cx.core_trigger_enabled,
    workers: Object.fromEntries(
      (['decision', 'execution'] as const).map((lane) => [
        lane,
        { alive: cx.workers_by_lane[lane] ?? 0, last_seen: cx.last_worker_by_lane[lane] ?? null },
      ]),
    ),
    grace_seconds: t.gap_grace_seconds,
    findings: all.map((f) => ({
      verdict: f.verdict,
      summary: f.summary,
      job_id: f.job_id,
      event_position: f.event_position,
    })),
  };
}
