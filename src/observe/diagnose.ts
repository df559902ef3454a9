// `canon diagnose <entity_id>`: the RFC's three runbooks (not enqueued; enqueued and not
// executed; executed without a result event) and the usual suspects (a dead job, a stuck
// run, a paused type, an open breaker, no live workers, a flag that is off) applied to one
// entity, worst first. One verdict, the evidence for it, and the next command to run.
import type pg from 'pg';
import { requiredType } from '../ledger.js';
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

const RUNBOOK: Partial<Record<Verdict, string>> = {
  not_enqueued: 'runbooks/not-enqueued.md',
  executed_no_event: 'runbooks/executed-no-event.md',
  dead_job: 'runbooks/dead-jobs.md',
  stuck: 'runbooks/stuck-jobs.md',
  paused: 'runbooks/enqueued-not-executed.md',
  held: 'runbooks/enqueued-not-executed.md',
  breaker_open: 'runbooks/enqueued-not-executed.md',
  no_workers: 'runbooks/enqueued-not-executed.md',
  enqueued_not_executed: 'runbooks/enqueued-not-executed.md',
};

export interface Diagnosis {
  entity_id: string;
  verdict: Verdict;
  problem: boolean;
  summary: string;
  evidence: string[];
  next: string[];
  runbook: string | null;
  /** every finding, worst first; the verdict is the first */
  findings: { verdict: Verdict; summary: string; job_id?: number; event_position?: number }[];
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
  core_trigger_enabled: boolean;
  flags: { name: string; enabled: boolean; rollout_percent: number; on_for_entity: boolean }[];
  /** positions of the entity's events that the gap rule finds without their job (src/sql/diagnose.ts) */
  gap: Set<number>;
}

interface Finding {
  verdict: Verdict;
  summary: string;
  evidence: string[];
  next: string[];
  job_id?: number;
  event_position?: number;
}

/** A SQL string literal for the commands diagnose suggests (ids and payloads may hold quotes). */
const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
const age = (now: number, iso: string) => Math.max(0, (now - Date.parse(iso)) / 1000);
const secs = (s: number) =>
  s < 120 ? `${Math.round(s)}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`;

function findings(ch: Chain, cx: Ctx, t: Thresholds): Finding[] {
  const out: Finding[] = [];
  const id = ch.query;
  const runsByJob = new Map<number, ChainRun[]>();
  for (const r of ch.runs) runsByJob.set(r.job_id, [...(runsByJob.get(r.job_id) ?? []), r]);
  const retried = new Set(ch.actions.filter((a) => a.action === 'retry').map((a) => a.job_id));
  const trig = cx.core_trigger_enabled
    ? 'the core trigger is enabled'
    : 'the core trigger canon_core_trigger is DISABLED';

  // 1. not enqueued: an event older than the grace period that the gap rule finds without its
  // job (a required event without its job, or an event no decision job covers)
  for (const e of ch.events) {
    if (age(cx.now, e.created_at) <= t.gap_grace_seconds || !cx.gap.has(e.position)) continue;
    const type = requiredType(e.kind);
    if (type) {
      const dedupe = typeof e.payload.dedupe_key === 'string' ? lit(e.payload.dedupe_key) : 'null';
      out.push({
        verdict: 'not_enqueued',
        summary: `${e.kind} (event ${e.position}, ${secs(age(cx.now, e.created_at))} ago) has no ${type} job: the required job was never enqueued or was deleted`,
        evidence: [
          `event ${e.position} ${e.kind} at ${e.created_at} by ${e.actor}`,
          `no job has source_event_position = ${e.position}`,
        ],
        next: [
          `psql: select * from canon.enqueue_job(${lit(type)}, ${lit(id)}, ${lit(JSON.stringify(e.payload.payload ?? {}))}::jsonb, ${dedupe}, ${e.position})`,
          `canon diagnose ${id}`,
        ],
        event_position: e.position,
      });
    } else {
      out.push({
        verdict: 'not_enqueued',
        summary: `${e.kind} (event ${e.position}, ${secs(age(cx.now, e.created_at))} ago) has no decision job: ${trig}`,
        evidence: [
          `event ${e.position} ${e.kind} at ${e.created_at}`,
          `no decision job of ${id} came from it or read it`,
          trig,
        ],
        next: [
          ...(cx.core_trigger_enabled ? [] : ['psql: alter table canon.events enable trigger canon_core_trigger']),
          `psql: select * from canon.enqueue_job('decide', ${lit(id)}, '{}'::jsonb, null, ${e.position})`,
          `canon diagnose ${id}`,
        ],
        event_position: e.position,
      });
    }
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
        next: [`canon trace ${id}`, `psql: select * from canon.job_runs where job_id = ${j.id}`],
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

  // 5-8. queued and not executing, and why
  for (const j of ch.jobs) {
    if (j.status !== 'queued') continue;
    const ty = cx.types[j.type];
    const waited = age(cx.now, j.run_at);
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
        ['canon health', `canon dead-jobs --type ${j.type}`],
      );
    else if (Date.parse(j.run_at) > cx.now)
      f(
        'retrying',
        `waiting to retry at ${j.run_at} after: ${(j.last_error ?? '').split('\n')[0].slice(0, 160)}`,
        [`last reason ${j.last_reason}`],
        [`canon trace ${id}`],
      );
    else if (!(cx.workers_by_lane[j.lane] > 0) && waited > t.gap_grace_seconds)
      f(
        'no_workers',
        `ready for ${secs(waited)} and no live ${j.lane} worker`,
        [`no worker with lane ${j.lane} heartbeated in the last ${t.worker_alive_seconds}s`],
        ['canon work   (or run canon tick from cron)', 'canon health'],
      );
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
        `waiting for a worker (ready for ${secs(waited)}, within the ${secs(t.gap_grace_seconds)} grace)`,
        [],
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
  if (!out.length) {
    const last = [...ch.runs].reverse().find((r) => r.lane === 'decision' && r.status === 'succeeded');
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
  'held',
  'paused',
  'breaker_open',
  'no_workers',
  'enqueued_not_executed',
  'retrying',
  'in_progress',
  'waiting_on_flag',
  'done',
  'idle',
];

export async function diagnose(db: pg.Pool, entityId: string, t: Thresholds = DEFAULT_THRESHOLDS): Promise<Diagnosis> {
  const ch = await loadChain(db, entityId, 'entity');
  const r = (await db.query(DIAGNOSE_SQL.context, [entityId, t.worker_alive_seconds])).rows[0];
  const cx: Ctx = {
    now: new Date(r.now).getTime(),
    types: r.types,
    workers_by_lane: r.workers_by_lane,
    core_trigger_enabled: r.core_trigger_enabled,
    flags: r.flags,
    gap: new Set(r.gap_positions),
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
    runbook: RUNBOOK[top.verdict] ?? null,
    findings: all.map((f) => ({
      verdict: f.verdict,
      summary: f.summary,
      job_id: f.job_id,
      event_position: f.event_position,
    })),
  };
}
