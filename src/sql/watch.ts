// The one statement behind each refresh of `canon watch`: a single round trip that returns
// one JSON document. It embeds `canon health`'s own snapshot (so the KPI tiles are the same
// numbers, computed by the same SQL) and `canon trace`'s chain query (for the drill-down
// views), and adds what only the dashboard shows. Every branch is an index range or lookup:
//   running by type      jobs_running_idx (type, locked_at) where running
//   dead by type (24 h)  jobs_failed_idx / jobs_failed_type_idx (status = 'failed') + job_actions_job_idx
//   per-minute buckets   job_runs_finished_idx (throughput), job_runs_started_idx + jobs pkey (waits)
//   workers              workers_heartbeat_idx (stopped_at is null)
//   recent failures      job_runs_failed_finished_idx + jobs pkey
//   flags, breakers      small tables; held jobs per flag by jobs_hold_idx
//   focus type           jobs_queued_type_idx, jobs_running_idx, jobs_failed_type_idx
//   focus entity         the trace chain: events pkey, jobs_entity_idx, job_runs by job
// Parameters: $1–$5 are health's (gap window, gap grace, worker alive, duplicate window,
// activity window, in seconds); $6 the job type drilled into, $7 the entity (both may be null).
import { HEALTH_SQL } from './health.js';
import { TRACE_SQL } from './trace.js';

/** Minutes in the sparklines (the current one included). */
export const WATCH_MINUTES = 30;
/** Row caps: what fits on any screen, so a refresh never ships a whole table. */
export const WATCH_LIMITS = { failures: 30, workers: 50, flags: 100, focusJobs: 100 } as const;

// trace's chain query takes the entity as $1; here the entity is $7. The rewrite touches only
// the placeholder (never $10 and up), and test/watch-sql.test.ts checks the result against
// `canon trace`'s own loader so the two cannot drift apart.
const traceChain = TRACE_SQL.byEntity.replace(/\$1(?!\d)/g, '$7::text');

// The first minute of the sparklines. Written out where it is used, not read from a CTE: the
// planner estimates "started_at >= <this>" from the index statistics only when it can see the
// value (with a CTE it guessed a third of all runs and hashed the whole jobs table).
const SINCE = `(date_trunc('minute', now()) - make_interval(mins => ${WATCH_MINUTES - 1}))`;

const focusJobColumns = `id, entity_id, status, attempts, max_attempts, run_at, locked_by, locked_at, heartbeat_at,
         hold_reason, last_reason, left(last_error, 500) as last_error, finished_at, trace_id, created_at`;

export const WATCH_SQL = {
  snapshot: `
with health as (${HEALTH_SQL.snapshot}
), running_by_type as (
  select type, count(*)::int as n from canon.jobs where status = 'running' group by type
), dead_by_type as (
  select type, count(*)::int as n from canon.dead_jobs
   where status = 'failed' and finished_at > now() - interval '24 hours' group by type
), types as (
  select t.name, t.lane, t.paused, t.paused_by, t.pause_reason, t.paused_at, t.max_attempts,
         coalesce(b.state, 'closed') as breaker,
         coalesce(r.n, 0) as running, coalesce(d.n, 0) as dead_24h
    from canon.job_types t
    left join canon.breakers b on b.job_type = t.name
    left join running_by_type r on r.type = t.name
    left join dead_by_type d on d.type = t.name
), throughput as (
  select date_trunc('minute', finished_at) as minute,
         count(*) filter (where status = 'succeeded')::int as ok,
         count(*) filter (where status = 'failed')::int as failed
    from canon.job_runs
   where finished_at >= ${SINCE}
   group by 1
), waits as (
  -- How long a run waited for a worker: started_at minus the job's run_at. A retry moves
  -- run_at, so only a job's latest attempt still knows its own; earlier attempts of retried
  -- jobs are left out rather than guessed.
  select date_trunc('minute', r.started_at) as minute,
         max(extract(epoch from r.started_at - j.run_at))::float8 as max_wait
    from canon.job_runs r
    join canon.jobs j on j.id = r.job_id and j.attempts = r.attempt and j.status <> 'queued'
   where r.started_at >= ${SINCE}
   group by 1
), minutes as (
  select m as minute, coalesce(t.ok, 0) as ok, coalesce(t.failed, 0) as failed, w.max_wait
    from generate_series(${SINCE}, date_trunc('minute', now()), interval '1 minute') m
    left join throughput t on t.minute = m
    left join waits w on w.minute = m
), workers as (
  select id, role, lanes, in_flight, concurrency, pid, host, pipeline, version, started_at, heartbeat_at,
         extract(epoch from now() - heartbeat_at)::float8 as heartbeat_age,
         heartbeat_at > now() - make_interval(secs => $3::float8) as alive
    from canon.workers
   where stopped_at is null
   order by heartbeat_at desc
   limit ${WATCH_LIMITS.workers}
), failures as (
  select r.id as run_id, r.job_id, r.type, r.lane, r.entity_id, r.attempt, j.max_attempts, r.reason,
         left(r.error, 500) as error, r.trace_id, r.finished_at, j.status as job_status,
         (j.status = 'failed' and not exists (select 1 from canon.job_actions a
                                               where a.job_id = j.id and a.action = 'retry')) as dead
    from canon.job_runs r
    join canon.jobs j on j.id = r.job_id
   where r.status = 'failed'
   order by r.finished_at desc
   limit ${WATCH_LIMITS.failures}
), flags as (
  select f.name, f.enabled, f.rollout_percent, f.strategy, f.killed_at, f.killed_by, f.updated_at, f.updated_by,
         (select count(*)::int from canon.jobs j
           where j.hold_reason = canon.flag_hold_reason(f.name) and j.status = 'queued') as held_jobs,
         (select jsonb_build_object('current_percent', r.current_percent, 'until_percent', r.until_percent,
                                    'step_percent', r.step_percent, 'every_seconds', r.every_seconds,
                                    'next_step_at', r.next_step_at, 'guard', r.guard)
            from canon.flag_rollouts r where r.flag_name = f.name and r.status = 'running') as rollout
    from canon.flags f
   order by f.name
   limit ${WATCH_LIMITS.flags}
), breakers as (
  select job_type, state, failure_count, opened_at, next_attempt_at, probe_job_id, reason
    from canon.breakers where state <> 'closed'
), ft_queued as (
  select count(*)::int as n,
         count(*) filter (where run_at <= now() and hold_reason is null)::int as ready,
         count(*) filter (where hold_reason is not null)::int as held
    from canon.jobs where $6::text is not null and type = $6::text and status = 'queued'
), ft_dead as (
  select count(*)::int as n, count(*) filter (where finished_at > now() - interval '24 hours')::int as last_24h
    from canon.dead_jobs where $6::text is not null and type = $6::text and status = 'failed'
), ft_jobs as (
  (select 'dead' as state, ${focusJobColumns} from canon.dead_jobs
    where $6::text is not null and type = $6::text and status = 'failed'
    order by finished_at desc, id desc limit ${WATCH_LIMITS.focusJobs})
  union all
  (select 'running', ${focusJobColumns} from canon.jobs
    where $6::text is not null and type = $6::text and status = 'running'
    order by locked_at, id limit ${WATCH_LIMITS.focusJobs})
  union all
  (select 'queued', ${focusJobColumns} from canon.jobs
    where $6::text is not null and type = $6::text and status = 'queued'
    order by run_at, id limit ${WATCH_LIMITS.focusJobs})
), trace as (${traceChain}
)
select jsonb_build_object(
  'health', (select to_jsonb(h) from health h),
  'types', (select coalesce(jsonb_agg(to_jsonb(t) order by t.lane, t.name), '[]'::jsonb) from types t),
  'minutes', (select jsonb_agg(to_jsonb(m) order by m.minute) from minutes m),
  'workers', (select coalesce(jsonb_agg(to_jsonb(w) order by w.heartbeat_at desc), '[]'::jsonb) from workers w),
  'workers_total', (select count(*)::int from canon.workers where stopped_at is null),
  'failures', (select coalesce(jsonb_agg(to_jsonb(f) order by f.finished_at desc, f.run_id desc), '[]'::jsonb) from failures f),
  'flags', (select coalesce(jsonb_agg(to_jsonb(f) order by f.name), '[]'::jsonb) from flags f),
  'breakers', (select coalesce(jsonb_agg(to_jsonb(b) order by b.job_type), '[]'::jsonb) from breakers b),
  'focus_type', case when $6::text is null then null else jsonb_build_object(
      'type', $6::text,
      'known', exists (select 1 from canon.job_types where name = $6::text),
      'queued', (select to_jsonb(q) from ft_queued q),
      'dead', (select to_jsonb(d) from ft_dead d),
      'jobs', (select coalesce(jsonb_agg(to_jsonb(j)), '[]'::jsonb) from ft_jobs j)) end,
  'focus_entity', case when $7::text is null then null else jsonb_build_object(
      'entity', $7::text,
      'exists', exists (select 1 from canon.entities where id = $7::text),
      'chain', (select to_jsonb(c) from trace c)) end
) as snapshot`,
} as const;
