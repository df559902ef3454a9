export const DEMO_SQL = {
  progress: `select count(*) filter (where kind = 'anchor.succeeded')::int as done,
                    count(*) filter (where kind like '%.failed')::int as failed
               from canon.events where entity_id = any($1) and (kind = 'anchor.succeeded' or kind like '%.failed')`,
  pending: `select count(*)::int as n from canon.jobs where entity_id = any($1) and status in ('queued', 'running')`,
  summary: `
    with ent as (select unnest($1::text[]) as id),
    jobs as (select j.* from canon.jobs j join ent on ent.id = j.entity_id),
    runs as (select r.* from canon.job_runs r join ent on ent.id = r.entity_id),
    lat as (
      select extract(epoch from (a.created_at - c.created_at)) * 1000 as ms
        from ent
        join canon.events c on c.entity_id = ent.id and c.kind = 'document.created'
        join canon.events a on a.entity_id = ent.id and a.kind = 'anchor.succeeded')
    select (select count(*) from ent)::int as entities,
           (select count(*) from jobs)::int as jobs,
           (select count(*) from jobs where lane = 'execution')::int as execution_jobs,
           (select count(*) from runs)::int as runs,
           (select count(*) from runs where status = 'failed')::int as failed_runs,
           (select count(*) from jobs where status = 'failed')::int as dead_jobs,
           (select count(*) from canon.events e join ent on ent.id = e.entity_id)::int as events,
           (select percentile_cont(0.5) within group (order by ms) from lat) as p50_ms,
           (select percentile_cont(0.99) within group (order by ms) from lat) as p99_ms`,
} as const;
