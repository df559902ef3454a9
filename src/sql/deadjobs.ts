// Dead jobs (derived: the view canon.dead_jobs). One statement returns the exact
// totals over every matching job and the newest $5 of them, so a limited list never hides
// how many there are. $1 since (s), $2 type, $3 correlation id, $4 reason, $5 limit.
export const DEAD_SQL = {
  list: `
with m as (
  select id, lane, type, entity_id, correlation_id, attempts, max_attempts, last_reason as reason,
         last_error, trace_id, source_event_position, created_at, finished_at as failed_at
    from canon.dead_jobs
   where finished_at > now() - make_interval(secs => $1::float8)
     and ($2::text is null or type = $2)
     and ($3::text is null or correlation_id = $3)
     and ($4::text is null or last_reason = $4)
)
select (select count(*)::int from m) as total_dead,
       (select coalesce(jsonb_object_agg(type, n), '{}'::jsonb)
          from (select type, count(*)::int as n from m group by type) x) as by_type,
       (select coalesce(jsonb_object_agg(reason, n), '{}'::jsonb)
          from (select coalesce(reason, 'unknown') as reason, count(*)::int as n from m group by 1) x) as by_reason,
       (select coalesce(jsonb_agg(to_jsonb(l) order by l.failed_at desc, l.id desc), '[]'::jsonb)
          from (select * from m order by failed_at desc, id desc limit $5) l) as jobs,
       ($2::text is null or exists (select 1 from canon.job_types where name = $2)) as type_known`,
} as const;
