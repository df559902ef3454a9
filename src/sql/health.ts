// The one statement behind `canon health`, `canon alerts`, `/health` and `/metrics`: every
// number in a single round trip, each CTE answered from a partial index (migrations/000*_*.sql).
// Parameters: $1 gap window (s), $2 gap grace (s, the RFC's Delta), $3 worker alive (s),
// $4 duplicate window (s), $5 authority activity window (s).
import { AUDIT_SQL } from './audit.js';
import { BREAKERS_SQL } from './breakers.js';
import { FLAGS_SQL, ROLLOUT_SQL } from './flags.js';
import { HORIZON_SQL } from './horizon.js';
import { PAUSE_SQL } from './pause.js';
import { REPLICA_STATE } from './replica.js';

/**
 * The steering and ledger-register reads health shows, embedded in the snapshot by reference
 * (their home stays in their own module), so health stays one round trip and the dashboard,
 * which embeds this snapshot in its own statement, gets them too. computeHealth maps their
 * rows with the same functions that map them read on their own (steeringOf, tamperAlertOf).
 * All small: paused types and breakers are tiny tables, held jobs read jobs_hold_idx,
 * rollbacks flag_changes_auto_rollback_idx, the register is a handful of sequences; the
 * horizon and the hot tables read the server's statistics views. None takes a parameter.
 */
const EMBEDDED_READS = {
  paused: PAUSE_SQL.paused,
  breakers: BREAKERS_SQL.notClosed,
  held: FLAGS_SQL.heldByFlag,
  rollouts: ROLLOUT_SQL.running,
  auto_rollbacks: ROLLOUT_SQL.autoRollbacks,
  register: AUDIT_SQL.register,
  acknowledged: AUDIT_SQL.acknowledged,
  // what pins the MVCC horizon and the hot tables' dead tuples (server statistics views)
  horizon: HORIZON_SQL.holders,
  hot_tables: HORIZON_SQL.hotTables,
} as const;

// each read as a jsonb array of its rows, in its own order, under its name above
const embeddedReads = `jsonb_build_object(${Object.entries(EMBEDDED_READS)
  .map(
    ([name, sql]) => `
         '${name}', (select coalesce(jsonb_agg(to_jsonb(q)), '[]'::jsonb) from (${sql}) q)`,
  )
  .join(',')})`;

/** true when the core trigger fires on ordinary inserts ('O' origin, 'A' always; 'D' and 'R' do not) */
export const CORE_TRIGGER_ENABLED = `(select coalesce(bool_or(t.tgenabled in ('O', 'A')), false)
    from pg_trigger t where t.tgrelid = 'canon.events'::regclass and t.tgname = 'canon_core_trigger')`;

/**
 * The gap rule's coverage test for one event (given as SQL expressions): `c.covered` is true
 * when a decision job of its entity covers it (docs/ARCHITECTURE.md, "event_to_job_gap,
 * exactly"). One probe, newest decision job first; "offset 0" keeps the runs check a probe by
 * job id (see gap_open below). Used for an entity's newest event and, where that one is
 * uncovered, for each of its events; `canon diagnose` applies it to one entity's events.
 */
export const decisionCovers = (entity: string, position: string, seq: string, createdAt: string) => `left join lateral (
      select true as covered from canon.jobs d
       where d.entity_id = ${entity} and d.lane = 'decision'
         and (d.status in ('queued', 'running')
              or d.source_event_position >= ${position}
              or exists (select 1 from canon.job_runs r
                          where r.job_id = d.id
                            and case when r.detail ? 'history_seq' then (r.detail->>'history_seq')::int >= ${seq}
                                     else r.started_at >= ${createdAt} end
                          offset 0))
       order by d.id desc limit 1) c on true`;

/**
 * The gap rule's test for a `job.<type>.required` event (given its position as a SQL
 * expression): its execution job exists. The decider, `jobs retry` and `jobs redrive` create
 * the job in the event's transaction, so a required event without one is a gap at once.
 */
export const requiredHasJob = (position: string) =>
  `exists (select 1 from canon.jobs j where j.source_event_position = ${position})`;

/**
 * True unless `canon prune` removed the jobs of the entity's events up to this position: they
 * were covered when they were pruned (canon.prune_settled checks the gap rule first). Asked
 * only of events already found uncovered, so a healthy system never pays for it.
 */
export const notPruned = (entity: string, position: string) =>
  `not exists (select 1 from canon.entity_pruned p where p.entity_id = ${entity} and p.covered_position >= ${position})`;

export const HEALTH_SQL = {
  snapshot: `
with queued as (
  select type,
         count(*)::int as n,
         count(*) filter (where run_at <= now())::int as ready,
         coalesce(extract(epoch from now() - min(run_at) filter (where run_at <= now())), 0)::float8 as oldest_ready_age
    from canon.jobs where status = 'queued' group by type
), queued_lane as (
  select lane, count(*)::int as n from canon.jobs where status = 'queued' and run_at <= now() group by lane
), running as (
  select count(*)::int as n,
         coalesce(avg(extract(epoch from now() - j.locked_at)), 0)::float8 as avg_age,
         count(*) filter (where j.heartbeat_at < now() - make_interval(secs => t.timeout_seconds))::int as stuck
    from canon.jobs j join canon.job_types t on t.name = j.type
   where j.status = 'running'
), dead as (
  select count(*)::int as n from canon.dead_jobs where status = 'failed' and finished_at > now() - interval '24 hours'
), runs as (
  select count(*) filter (where finished_at > now() - interval '5 minutes' and status = 'succeeded')::int as ok_5m,
         count(*) filter (where finished_at > now() - interval '5 minutes' and status = 'failed')::int as failed_5m,
         count(*) filter (where status = 'succeeded')::int as ok_1h,
         count(*) filter (where status = 'failed')::int as failed_1h
    from canon.job_runs where finished_at > now() - interval '1 hour'
), authority as (
  select count(*)::int as n from canon.job_runs
   where lane = 'decision' and started_at > now() - make_interval(secs => $5::float8)
), workers as (
  select coalesce(jsonb_object_agg(role, n), '{}'::jsonb) as by_role, coalesce(sum(n), 0)::int as alive
    from (select role, count(*)::int as n from canon.workers
           where stopped_at is null and heartbeat_at > now() - make_interval(secs => $3::float8) group by role) w
), stale_workers as (
  select count(*)::int as n from canon.workers
   where stopped_at is null and heartbeat_at <= now() - make_interval(secs => $3::float8)
), bypass as (
  select count(*)::int as total, count(*) filter (where created_at > now() - interval '24 hours')::int as last_24h
    from canon.jobs where not via_gateway
), trig as (
  select ${CORE_TRIGGER_ENABLED} as enabled
), gap_execution as (
  -- a job.<type>.required event older than the grace period whose execution job does not exist
  select count(*)::int as n from canon.events e
   where e.kind like 'job.%.required'
     and e.created_at > now() - make_interval(secs => $1::float8)
     and e.created_at <= now() - make_interval(secs => $2::float8)
     and not ${requiredHasJob('e.position')}
     and ${notPruned('e.entity_id', 'e.position')}
), gap_entities as (
  -- gap_decision, stage 1 of 2. The rule (docs/ARCHITECTURE.md "event_to_job_gap, exactly"):
  -- an event other than job.%.required, older than the grace period, that no decision job of
  -- its entity covers. Coverage is monotonic: each way a decision job covers an event (source
  -- position >= the event's position; queued or running; a run with history_seq >= its seq;
  -- a run without one that started at or after its created_at) compares one coordinate of the
  -- event with a bound, so a job covering an event with larger coordinates covers every event
  -- below them. One row per entity with events in the window (events_created_at_idx), holding
  -- the largest position, seq and created_at of those events: that is the entity's newest
  -- event, taken per coordinate because a position is drawn before the append takes the
  -- entity's lock, so two concurrent appends can get positions in the other order than seqs.
  select e.entity_id, min(e.seq) as first_seq, max(e.seq) as last_seq,
         max(e.position) as last_position, max(e.created_at) as last_created_at
    from canon.events e
   where e.kind not like 'job.%.required'
     and e.created_at > now() - make_interval(secs => $1::float8)
     and e.created_at <= now() - make_interval(secs => $2::float8)
   group by e.entity_id
), gap_open as materialized (
  -- the entities whose newest event no decision job covers (normally none): one probe per
  -- entity, newest job first (jobs_entity_idx backwards, its runs by job_runs_job_id_attempt_key).
  -- The lateral with limit and the materialized CTE keep it so: without them the planner joins
  -- the window's events back first, or hash-anti-joins all decision jobs, whose cost grows with
  -- the ledger. "offset 0" keeps the runs check a probe by job id: without it Postgres may turn
  -- it into a hash of all runs, rebuilt for every entity (it does so on small tables). The rows
  -- pass through arrays so that the planner prices the probes for the few entities there are,
  -- not for its guess from the ledger's statistics, which on a large ledger is many times too
  -- high: priced at that guess the statement crosses jit_optimize_above_cost, and a server with
  -- JIT (jit = on, the default where LLVM is installed) would compile it with inlining and
  -- optimisation on every call, at a cost far above the query's own. Priced for what it does,
  -- it stays below jit_above_cost.
  select g.entity_id, g.first_seq, g.last_seq
    from (select array_agg(entity_id) as ids, array_agg(first_seq) as first_seqs, array_agg(last_seq) as last_seqs,
                 array_agg(last_position) as positions, array_agg(last_created_at) as created
            from gap_entities) a
   cross join unnest(a.ids, a.first_seqs, a.last_seqs, a.positions, a.created)
              as g(entity_id, first_seq, last_seq, last_position, last_created_at)
    ${decisionCovers('g.entity_id', 'g.last_position', 'g.last_seq', 'g.last_created_at')}
   where c.covered is null and ${notPruned('g.entity_id', 'g.last_position')}
), gap_decision as (
  -- stage 2: for those entities only, every event of the window that no decision job covers,
  -- by the rule itself (events_pkey over the entity's seq range in the window, then the same
  -- probe per event); what it counts is exactly what the rule counts over the whole window.
  -- When every active entity comes here (an outage) that is one probe per event: what the rule
  -- applied directly costs, plus stage 1's one probe per entity.
  select count(*)::int as n
    from gap_open o
    join canon.events e on e.entity_id = o.entity_id and e.seq between o.first_seq and o.last_seq
    ${decisionCovers('e.entity_id', 'e.position', 'e.seq', 'e.created_at')}
   where e.kind not like 'job.%.required'
     and e.created_at > now() - make_interval(secs => $1::float8)
     and e.created_at <= now() - make_interval(secs => $2::float8)
     and c.covered is null and ${notPruned('e.entity_id', 'e.position')}
), dup as (
  select count(*)::int as n from (
    select 1 from canon.events
     where created_at > now() - make_interval(secs => $4::float8) and trace_id is not null
     group by entity_id, kind having count(*) > 1) d
), untraced as (
  select count(*)::int as n from canon.jobs
   where status = 'succeeded' and trace_id is null
     and created_at >= coalesce(canon.setting('trace_policy_cutoff')::timestamptz, '-infinity'::timestamptz)
)
select now() as checked_at,
       canon.setting('runtime_version') as runtime_version,
       canon.setting('gateway_mode') as gateway_mode,
       (select coalesce(jsonb_object_agg(type, n), '{}'::jsonb) from queued) as queued_by_type,
       (select coalesce(jsonb_object_agg(type, round(oldest_ready_age::numeric, 3)) filter (where ready > 0), '{}'::jsonb) from queued) as oldest_ready_by_type,
       (select coalesce(sum(n), 0)::int from queued) as queued_total,
       (select coalesce(sum(ready), 0)::int from queued) as queued_ready,
       (select coalesce(max(oldest_ready_age), 0)::float8 from queued) as lag_seconds,
       (select coalesce(jsonb_object_agg(lane, n), '{}'::jsonb) from queued_lane) as ready_by_lane,
       running.n as running_count, running.avg_age as running_avg_age, running.stuck as stuck_count,
       dead.n as dead_24h,
       runs.ok_5m, runs.failed_5m, runs.ok_1h, runs.failed_1h,
       authority.n as decision_runs_window,
       workers.alive as workers_alive, workers.by_role as workers_by_role, stale_workers.n as workers_stale,
       bypass.total as bypass_total, bypass.last_24h as bypass_24h,
       trig.enabled as core_trigger_enabled,
       gap_execution.n as gap_execution, gap_decision.n as gap_decision,
       dup.n as duplicate_groups, untraced.n as untraced_succeeded,
       ${embeddedReads} as embedded_reads,
       ${REPLICA_STATE} as replica
  from running, dead, runs, authority, workers, stale_workers, bypass, trig, gap_execution, gap_decision, dup, untraced`,
} as const;
