// `canon prune` (migrations/repeatable/retention.sql has the functions): a walk over jobs by
// primary key that names the entities to look at, one short transaction per batch.
export const PRUNE_SQL = {
  // $1 the horizon as seconds before now, $2 jobs per batch
  start: `select id, horizon from canon.prune_start(make_interval(secs => $1::float8), $2::int)`,
  // for a dry run, which writes nothing: the horizon a run would have
  horizon: `select now() - make_interval(secs => $1::float8) as horizon`,
  // the next $2 jobs after id $1, by primary key: the entities whose first job is among them
  // (each entity is looked at once per run, in the batch of its oldest job), the last id, and
  // whether any job was created at or after the horizon $3 (none after it can be prunable)
  walk: `
    select coalesce(array_agg(distinct j.entity_id) filter (
             where not exists (select 1 from canon.jobs o where o.entity_id = j.entity_id and o.id <= $1::bigint)), '{}')
             as entity_ids,
           max(j.id) as last_id, count(*)::int as n, coalesce(bool_or(j.created_at >= $3::timestamptz), false) as past_horizon
      from (select id, entity_id, created_at from canon.jobs where id > $1::bigint order by id limit $2) j`,
  // the id range of the walk, for the progress bar (two probes of the primary key)
  idRange: `select coalesce((select min(id) from canon.jobs), 0) as min_id, coalesce((select max(id) from canon.jobs), 0) as max_id`,
  batch: `select entities, jobs, runs, rejections from canon.prune_batch($1::bigint, $2::text[])`,
  // what a batch would remove: the same choice of entities, nothing changed
  wouldRemove: `
    with s as (select entity_id from canon.prune_settled($1::text[], $2::timestamptz)),
         r as (select r.id from canon.job_runs r where r.entity_id in (select entity_id from s))
    select (select count(*) from s)::int as entities,
           (select count(*) from canon.jobs j where j.entity_id in (select entity_id from s))::int as jobs,
           (select count(*) from r)::int as runs,
           (select count(*) from canon.run_rejections x where x.run_id in (select id from r))::int as rejections`,
  finish: `select canon.prune_finish($1::bigint, $2::text)`,
} as const;
