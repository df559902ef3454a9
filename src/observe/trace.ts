// `canon trace`: the chain event → decision job → run → job.<type>.required → execution job
// → runs → result event, as a tree. The edges are the columns canon writes on the way: a job
// hangs under the event in its source_event_position, a run under its job, an event under
// the run whose trace_id wrote it, and a retry's event under the dead job it replaced.
import type pg from 'pg';
import { printable } from '../args.js';
import { usageError } from '../errors.js';
import { type LedgerEvent, requiredType } from '../ledger.js';
import { TRACE_SQL } from '../sql/trace.js';

/** An event as the chain query returns it (jsonb: times are ISO strings, no hash). */
export interface ChainEvent extends Omit<LedgerEvent, 'created_at' | 'hash'> {
  created_at: string;
}
export interface ChainJob {
  id: number;
  lane: 'decision' | 'execution';
  type: string;
  entity_id: string;
  status: string;
  attempts: number;
  max_attempts: number;
  run_at: string;
  created_at: string;
  finished_at: string | null;
  locked_by: string | null;
  heartbeat_at: string | null;
  correlation_id: string;
  trace_id: string | null;
  source_event_position: number | null;
  via_gateway: boolean;
  hold_reason: string | null;
  last_error: string | null;
  last_reason: string | null;
}
export interface ChainRun {
  id: number;
  job_id: number;
  attempt: number;
  lane: string;
  type: string;
  worker_id: string;
  trace_id: string;
  status: string;
  reason: string | null;
  error: string | null;
  started_at: string;
  heartbeat_at: string;
  finished_at: string | null;
  result_event_position: number | null;
  detail?: Record<string, unknown> | null;
}
export interface ChainAction {
  id: number;
  job_id: number;
  action: 'retry' | 'cancel' | 'redrive';
  from_status: string;
  new_job_id: number | null;
  event_position: number | null;
  actor: string;
  reason: string | null;
  at: string;
}
/** What `canon prune` removed from one entity (canon.entity_pruned): its events up to covered_position lost their jobs and runs. */
export interface ChainPruned {
  entity_id: string;
  jobs_succeeded: number;
  jobs_failed: number;
  jobs_cancelled: number;
  runs_succeeded: number;
  runs_failed: number;
  runs_cancelled: number;
  dead_types: string[];
  covered_position: number;
  last_pruned_at: string;
}
export interface Chain {
  query: string;
  matched_by: 'entity' | 'correlation';
  events: ChainEvent[];
  jobs: ChainJob[];
  runs: ChainRun[];
  actions: ChainAction[];
  pruned: ChainPruned[];
}

export async function loadChain(
  db: pg.Pool | pg.ClientBase,
  id: string,
  only: 'entity' | 'any' = 'any',
): Promise<Chain> {
  const r = (await db.query(TRACE_SQL.resolve, [id])).rows[0];
  const matched_by = r.is_entity ? 'entity' : r.is_correlation && only === 'any' ? 'correlation' : null;
  if (!matched_by) {
    throw usageError(
      `no entity${only === 'any' ? ' or correlation id' : ''} "${printable(id)}" in the ledger: check the id (canon events list <entity_id> shows an entity's events)`,
    );
  }
  const c = (await db.query(matched_by === 'entity' ? TRACE_SQL.byEntity : TRACE_SQL.byCorrelation, [id])).rows[0];
  return {
    query: id,
    matched_by,
    events: c.events,
    jobs: c.jobs,
    runs: c.runs,
    actions: c.actions,
    pruned: c.pruned,
  };
}

export type TraceNode = EventNode | JobNode | RunNode | ActionNode;
export interface EventNode {
  node: 'event';
  position: number;
  entity_id: string;
  seq: number;
  kind: string;
  at: string;
  actor: string;
  trace_id: string | null;
  note?: string;
  children: TraceNode[];
}
export interface JobNode {
  node: 'job';
  id: number;
  lane: string;
  type: string;
  status: string;
  dead: boolean;
  attempts: number;
  max_attempts: number;
  created_at: string;
  finished_at: string | null;
  trace_id: string | null;
  reason: string | null;
  error: string | null;
  via_gateway: boolean;
  children: TraceNode[];
}
/** What a decision run saw and chose (job_runs.detail, written by the decider). */
export interface DecisionDetail {
  required: string[];
  skipped: string[];
  done: boolean;
  outcome: string | null;
  flags: Record<string, boolean>;
}
export interface RunNode {
  node: 'run';
  decision?: DecisionDetail;
  id: number;
  attempt: number;
  worker_id: string;
  trace_id: string;
  status: string;
  started_at: string;
  finished_at: string | null;
  duration_seconds: number | null;
  reason: string | null;
  error: string | null;
  children: TraceNode[];
}
export interface ActionNode {
  node: 'action';
  action: string;
  actor: string;
  reason: string | null;
  at: string;
  new_job_id: number | null;
  children: TraceNode[];
}

export interface Trace {
  query: string;
  matched_by: 'entity' | 'correlation';
  entities: string[];
  counts: { events: number; jobs: number; runs: number; dead_jobs: number };
  /** what `canon prune` removed from these entities; the tree shows their events from the ledger alone */
  pruned: { entities: number; jobs: number; runs: number; last_pruned_at: string | null };
  tree: TraceNode[];
}

export function buildTree(ch: Chain): Trace {
  const jobsBySource = group(ch.jobs, (j) => j.source_event_position);
  const runsByJob = group(ch.runs, (r) => r.job_id);
  const eventsByTrace = group(ch.events, (e) => e.trace_id);
  const actionsByJob = group(ch.actions, (a) => a.job_id);
  const jobById = new Map(ch.jobs.map((j) => [j.id, j]));
  const eventByPos = new Map(ch.events.map((e) => [e.position, e]));
  const runTraces = new Set(ch.runs.map((r) => r.trace_id));
  const actionEvents = new Set(ch.actions.map((a) => a.event_position).filter((p): p is number => p !== null));
  const retryJobs = new Set(
    ch.actions.filter((a) => a.action === 'retry' && a.event_position === null).map((a) => a.new_job_id),
  );
  const retried = new Set(ch.actions.filter((a) => a.action === 'retry').map((a) => a.job_id));
  const placed = new Set<number>();
  // Pruned work: an entity's events up to its covered position lost their jobs and runs. An
  // event a pruned run wrote hangs under the event that caused it (causation_id), so the
  // chain still reads as a tree from the ledger alone.
  const coveredThrough = new Map(ch.pruned.map((p) => [p.entity_id, Number(p.covered_position)]));
  const prunedPart = (e: ChainEvent) => e.position <= (coveredThrough.get(e.entity_id) ?? 0);
  const fromLedger = ch.events.filter(
    (e) =>
      prunedPart(e) &&
      e.trace_id !== null &&
      !runTraces.has(e.trace_id) &&
      e.causation_id !== null &&
      eventByPos.has(e.causation_id),
  );
  const byCause = group(fromLedger, (e) => e.causation_id);
  const underCause = new Set(fromLedger.map((e) => e.position));

  const eventNode = (e: ChainEvent): EventNode => {
    const jobs = (jobsBySource.get(e.position) ?? []).filter((j) => !retryJobs.has(j.id) && !placed.has(j.id));
    const n: EventNode = {
      node: 'event',
      position: e.position,
      entity_id: e.entity_id,
      seq: e.seq,
      kind: e.kind,
      at: e.created_at,
      actor: e.actor,
      trace_id: e.trace_id,
      children: [...jobs.map(jobNode), ...(byCause.get(e.position) ?? []).map(eventNode)],
    };
    const required = requiredType(e.kind) !== undefined;
    if (required && !(jobsBySource.get(e.position) ?? []).length)
      n.note = prunedPart(e) ? 'its job was pruned' : 'NO JOB for this required event (event_to_job_gap)';
    else if (!required && !jobs.length)
      n.note = prunedPart(e)
        ? 'decided by a pruned decision job'
        : 'no decision job of its own (decided by a decision already queued, or none: see canon diagnose)';
    return n;
  };
  const jobNode = (j: ChainJob): JobNode => {
    placed.add(j.id);
    const runs = (runsByJob.get(j.id) ?? []).map(runNode);
    const acts = (actionsByJob.get(j.id) ?? []).map(actionNode);
    return {
      node: 'job',
      id: j.id,
      lane: j.lane,
      type: j.type,
      status: j.status,
      dead: j.status === 'failed' && !retried.has(j.id),
      attempts: j.attempts,
      max_attempts: j.max_attempts,
      created_at: j.created_at,
      finished_at: j.finished_at,
      trace_id: j.trace_id,
      reason: j.last_reason,
      error: j.last_error,
      via_gateway: j.via_gateway,
      children: [...runs, ...acts],
    };
  };
  const runNode = (r: ChainRun): RunNode => ({
    node: 'run',
    id: r.id,
    attempt: r.attempt,
    worker_id: r.worker_id,
    trace_id: r.trace_id,
    status: r.status,
    started_at: r.started_at,
    finished_at: r.finished_at,
    duration_seconds: r.finished_at ? (Date.parse(r.finished_at) - Date.parse(r.started_at)) / 1000 : null,
    reason: r.reason,
    error: r.error,
    ...(r.detail ? { decision: r.detail as unknown as DecisionDetail } : {}),
    children: (eventsByTrace.get(r.trace_id) ?? []).map(eventNode),
  });
  const actionNode = (a: ChainAction): ActionNode => {
    const children: TraceNode[] = [];
    const ev = a.event_position !== null ? eventByPos.get(a.event_position) : undefined;
    if (ev) children.push(eventNode(ev));
    else if (a.new_job_id !== null && jobById.has(a.new_job_id) && !placed.has(a.new_job_id))
      children.push(jobNode(jobById.get(a.new_job_id)!));
    return {
      node: 'action',
      action: a.action,
      actor: a.actor,
      reason: a.reason,
      at: a.at,
      new_job_id: a.new_job_id,
      children,
    };
  };

  // roots: events no run of this chain wrote and no retry appended, in ledger order
  const tree: TraceNode[] = ch.events
    .filter(
      (e) => !(e.trace_id && runTraces.has(e.trace_id)) && !actionEvents.has(e.position) && !underCause.has(e.position),
    )
    .map(eventNode);
  // jobs that no event of the chain started (bypasses, or sources outside the chain)
  for (const j of ch.jobs) if (!placed.has(j.id) && !retryJobs.has(j.id)) tree.push(jobNode(j));
  return {
    query: ch.query,
    matched_by: ch.matched_by,
    entities: [...new Set(ch.events.map((e) => e.entity_id).concat(ch.jobs.map((j) => j.entity_id)))],
    counts: {
      events: ch.events.length,
      jobs: ch.jobs.length,
      runs: ch.runs.length,
      dead_jobs: ch.jobs.filter((j) => j.status === 'failed' && !retried.has(j.id)).length,
    },
    pruned: {
      entities: ch.pruned.length,
      jobs: ch.pruned.reduce((n, p) => n + p.jobs_succeeded + p.jobs_failed + p.jobs_cancelled, 0),
      runs: ch.pruned.reduce((n, p) => n + p.runs_succeeded + p.runs_failed + p.runs_cancelled, 0),
      last_pruned_at:
        ch.pruned
          .map((p) => p.last_pruned_at)
          .sort()
          .at(-1) ?? null,
    },
    tree,
  };
}

/** "decided: required tsa; flags D1_RUN_TSA_ENABLED=on" — the flag values the decision used. */
function decisionLabel(d: DecisionDetail): string {
  const what = d.required.length
    ? `required ${d.required.join(', ')}`
    : d.done
      ? `done${d.outcome ? ` (${d.outcome})` : ''}`
      : d.skipped.length
        ? `waiting on ${d.skipped.join(', ')}`
        : 'nothing new';
  const flags = Object.entries(d.flags ?? {}).map(([k, v]) => `${k}=${v ? 'on' : 'off'}`);
  return `decided: ${what}${flags.length ? `; flags ${flags.join(' ')}` : ''}`;
}

function group<T, K>(xs: T[], key: (x: T) => K): Map<K, T[]> {
  const m = new Map<K, T[]>();
  for (const x of xs) {
    const k = key(x);
    const list = m.get(k);
    if (list) list.push(x);
    else m.set(k, [x]);
  }
  return m;
}

const time = (iso: string) => new Date(iso).toISOString().slice(11, 23);
const dur = (s: number | null) => (s === null ? 'running' : s < 1 ? `${Math.round(s * 1000)}ms` : `${s.toFixed(2)}s`);

export function renderTrace(
  t: Trace,
  c: {
    red(s: string): string;
    yellow(s: string): string;
    green(s: string): string;
    dim(s: string): string;
    bold(s: string): string;
  },
): string {
  const out = [
    `${c.bold(t.query)} (${t.matched_by}${t.entities.length > 1 ? `, ${t.entities.length} entities` : ''}): ${t.counts.events} events, ${t.counts.jobs} jobs, ${t.counts.runs} runs${t.counts.dead_jobs ? c.red(`, ${t.counts.dead_jobs} dead`) : ''}${t.pruned.jobs ? c.dim(`; ${t.pruned.jobs} jobs and ${t.pruned.runs} runs pruned (last ${t.pruned.last_pruned_at})`) : ''}`,
  ];
  const status = (s: string, dead = false) =>
    dead
      ? c.red('DEAD')
      : s === 'succeeded'
        ? c.green(s)
        : s === 'failed' || s === 'cancelled'
          ? c.red(s)
          : c.yellow(s);
  const label = (n: TraceNode): string => {
    switch (n.node) {
      case 'event':
        return `● ${n.seq} ${c.bold(n.kind)}  ${time(n.at)}  ${n.entity_id === t.query ? '' : `${n.entity_id}  `}by ${n.actor}${n.note ? `  ${n.note.startsWith('NO JOB') ? c.red(n.note) : c.dim(n.note)}` : ''}`;
      case 'job':
        return `job #${n.id} ${n.type} [${n.lane}] ${status(n.status, n.dead)}  attempts ${n.attempts}/${n.max_attempts}${n.via_gateway ? '' : c.yellow('  (bypassed the gateway)')}${n.dead ? `  ${n.reason ?? ''}: ${printable(n.error ?? '', 120)}` : ''}`;
      case 'run':
        return `run ${n.attempt} ${status(n.status)} ${dur(n.duration_seconds)}  ${time(n.started_at)}  worker ${n.worker_id}  ${c.dim(`trace ${n.trace_id}`)}${n.reason ? `  ${n.reason}` : ''}${n.error ? `: ${printable(n.error, 120)}` : ''}${n.decision ? `  ${c.dim(decisionLabel(n.decision))}` : ''}`;
      case 'action':
        // a redrive sits under the job it made: no arrow back to itself
        return `${n.action} by ${n.actor} at ${time(n.at)}${n.reason ? ` ("${printable(n.reason, 80)}")` : ''}${n.new_job_id && n.action !== 'redrive' ? ` → job #${n.new_job_id}` : ''}`;
    }
  };
  const walk = (nodes: TraceNode[], prefix: string) => {
    nodes.forEach((n, i) => {
      const last = i === nodes.length - 1;
      out.push(prefix + (last ? '└─ ' : '├─ ') + label(n));
      walk(n.children, prefix + (last ? '   ' : '│  '));
    });
  };
  walk(t.tree, '');
  return out.join('\n');
}
