// An entity's (or a correlation's) whole chain in one round trip: events, jobs, every run
// of those jobs, the operator actions on them, and what `canon prune` removed from its
// entities (their tallies). Each branch is an index lookup (events by
// primary key or correlation index, jobs by entity or correlation index, runs by job).
const chain = (eventsWhere: string, jobsWhere: string) => `
with ev as (
  select position, entity_id, seq, kind, payload, correlation_id, causation_id, trace_id, actor, created_at
    from canon.events where ${eventsWhere}
), jb as (
  select id, lane, type, entity_id, status, attempts, max_attempts, priority, run_at, created_at, finished_at,
         locked_by, heartbeat_at, correlation_id, trace_id, source_event_position, via_gateway, hold_reason,
         last_error, last_reason, dedupe_key, created_by
    from canon.jobs where ${jobsWhere}
)
select (select coalesce(jsonb_agg(to_jsonb(ev) order by ev.position), '[]'::jsonb) from ev) as events,
       (select coalesce(jsonb_agg(to_jsonb(jb) order by jb.id), '[]'::jsonb) from jb) as jobs,
       (select coalesce(jsonb_agg(to_jsonb(r) order by r.job_id, r.attempt, r.id), '[]'::jsonb)
          from canon.job_runs r where r.job_id in (select id from jb)) as runs,
       (select coalesce(jsonb_agg(to_jsonb(a) order by a.id), '[]'::jsonb)
          from canon.job_actions a where a.job_id in (select id from jb)) as actions,
       (select coalesce(jsonb_agg(to_jsonb(p) order by p.entity_id), '[]'::jsonb)
          from canon.entity_pruned p where p.entity_id in (select distinct entity_id from ev)) as pruned`;

export const TRACE_SQL = {
  resolve: `select exists (select 1 from canon.entities where id = $1) as is_entity,
                   exists (select 1 from canon.events where correlation_id = $1) as is_correlation`,
  byEntity: chain('entity_id = $1', 'entity_id = $1'),
  byCorrelation: chain('correlation_id = $1', 'correlation_id = $1'),
} as const;
