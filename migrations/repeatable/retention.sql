-- canon definitions | class: core | requires: status
-- `canon prune`: finished jobs and their runs are removed a whole settled entity at a time,
-- in small batches, each one short transaction; what was removed is tallied per entity
-- (canon.entity_pruned) so that the status rules, the gap rule, trace and diagnose answer as
-- before. The ledger is never touched. docs/decisions/0032-retention-by-settled-entity.md.

-- The given entities that may be pruned at this horizon, each with the newest event position
-- that its pruned work covers. An entity is settled when it has jobs, every one of them
-- finished before the horizon, no run is open, no operator action names its jobs (the record
-- of a retry or a cancel stays with its jobs), and the gap rule finds nothing missing since
-- its last prune: every job.<type>.required event has its job, and a decision job covers its
-- newest other event (coverage is monotonic, docs/decisions/0006-gap-check-in-two-stages.md,
-- so the newest event by each coordinate stands for all of them). Pruning never hides a gap.
-- One statement, so the covered position and the checks see the same moment.
create or replace function canon.prune_settled(p_ids text[], p_horizon timestamptz)
returns table (entity_id text, covered_position bigint)
language sql stable
set plan_cache_mode = force_generic_plan
as $$
  select e.id, (select max(ev.position) from canon.events ev where ev.entity_id = e.id)
    from canon.entities e
    left join canon.entity_pruned p on p.entity_id = e.id
   where e.id = any (p_ids)
     and exists (select 1 from canon.jobs j where j.entity_id = e.id)
     and not exists (select 1 from canon.jobs j
                      where j.entity_id = e.id and (j.finished_at is null or j.finished_at >= p_horizon))
     and not exists (select 1 from canon.job_runs r where r.entity_id = e.id and r.finished_at is null)
     and not exists (select 1 from canon.jobs j join canon.job_actions a on a.job_id = j.id or a.new_job_id = j.id
                      where j.entity_id = e.id)
     and not exists (select 1 from canon.events ev
                      where ev.entity_id = e.id and ev.kind like 'job.%.required'
                        and ev.position > coalesce(p.covered_position, 0)
                        and not exists (select 1 from canon.jobs j where j.source_event_position = ev.position))
     and not exists (
       select 1
         from (select max(ev.position) as position, max(ev.seq) as seq, max(ev.created_at) as created_at
                 from canon.events ev
                where ev.entity_id = e.id and ev.kind not like 'job.%.required'
                  and ev.position > coalesce(p.covered_position, 0)) newest
        where newest.position is not null
          and not exists (
            select 1 from canon.jobs d
             where d.entity_id = e.id and d.lane = 'decision'
               and (d.source_event_position >= newest.position
                    or exists (select 1 from canon.job_runs r
                                where r.job_id = d.id
                                  and case when r.detail ? 'history_seq' then (r.detail->>'history_seq')::int >= newest.seq
                                           else r.started_at >= newest.created_at end))))
$$;
revoke all on function canon.prune_settled(text[], timestamptz) from public;
grant execute on function canon.prune_settled(text[], timestamptz) to canon_reader;

-- Starts a prune run: its horizon is now() − p_older_than. Returns the run's id and horizon.
create or replace function canon.prune_start(p_older_than interval, p_batch_size integer)
returns table (id bigint, horizon timestamptz)
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
begin
  if p_older_than is null or p_older_than <= interval '0' then
    raise exception 'the prune horizon must be a positive interval, got %', p_older_than using errcode = 'CN005';
  end if;
  if p_batch_size is null or p_batch_size < 1 then
    raise exception 'the prune batch size must be at least 1, got %', p_batch_size using errcode = 'CN005';
  end if;
  return query
    insert into canon.prune_runs (older_than, horizon, batch_size)
    values (p_older_than, now() - p_older_than, p_batch_size)
    returning prune_runs.id, prune_runs.horizon;
end $$;
revoke all on function canon.prune_start(interval, integer) from public;
grant execute on function canon.prune_start(interval, integer) to canon_operator;

-- One batch of a prune run, one transaction: the settled ones among the given entities lose
-- their jobs and runs (and the runs' rejections); their tally grows by what was removed; the
-- run's record grows by the same counts. Locks in the order of decision 0012: the entities'
-- jobs (by entity, then id), their runs, the entity row (the tally's foreign key), status rows
-- last (refreshed at commit by the delete triggers). The checks are made again under the
-- locks, so a job created or retried meanwhile keeps its entity out of this batch.
create or replace function canon.prune_batch(p_run bigint, p_ids text[])
returns table (entities integer, jobs integer, runs integer, rejections integer)
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
declare
  v_horizon timestamptz;
  v_first text[];
  v_ids text[];
  v_covered bigint[];
  v_jobs bigint[];
  v_runs bigint[];
  v_entities integer;
  v_rejections integer;
begin
  select r.horizon into v_horizon from canon.prune_runs r where r.id = p_run and r.status = 'running';
  if not found then
    raise exception 'prune run % does not exist or has ended', p_run using errcode = 'CN006';
  end if;
  v_first := array(select s.entity_id from canon.prune_settled(p_ids, v_horizon) s);
  perform 1 from canon.jobs j where j.entity_id = any (v_first) order by j.entity_id, j.id for update;
  select coalesce(array_agg(s.entity_id order by s.entity_id), '{}'), coalesce(array_agg(s.covered_position order by s.entity_id), '{}')
    into v_ids, v_covered
    from canon.prune_settled(v_first, v_horizon) s;
  v_entities := cardinality(v_ids);
  v_jobs := array(select j.id from canon.jobs j where j.entity_id = any (v_ids) and j.finished_at < v_horizon
                   order by j.entity_id, j.id);
  v_runs := array(select r.id from canon.job_runs r where r.job_id = any (v_jobs) order by r.id);
  perform 1 from canon.job_runs r where r.id = any (v_runs) order by r.id for update;

  with pj as (
    select j.entity_id, j.type, j.status,
           j.id = max(j.id) over (partition by j.entity_id, j.type) as latest_of_type
      from canon.jobs j where j.id = any (v_jobs)
  ), jt as (
    select pj.entity_id,
           count(*) filter (where pj.status = 'succeeded')::int as succeeded,
           count(*) filter (where pj.status = 'failed')::int as failed,
           count(*) filter (where pj.status = 'cancelled')::int as cancelled,
           array_agg(distinct pj.type) as types,
           coalesce(array_agg(distinct pj.type) filter (where pj.status = 'failed' and pj.latest_of_type), '{}') as dead
      from pj group by pj.entity_id
  ), rt as (
    select r.entity_id,
           count(*) filter (where r.status = 'succeeded')::int as succeeded,
           count(*) filter (where r.status = 'failed')::int as failed,
           count(*) filter (where r.status = 'cancelled')::int as cancelled
      from canon.job_runs r where r.id = any (v_runs) group by r.entity_id
  )
  insert into canon.entity_pruned as p (entity_id, jobs_succeeded, jobs_failed, jobs_cancelled, runs_succeeded,
                                        runs_failed, runs_cancelled, dead_types, covered_position, last_prune_run)
  select s.entity_id, coalesce(jt.succeeded, 0), coalesce(jt.failed, 0), coalesce(jt.cancelled, 0),
         coalesce(rt.succeeded, 0), coalesce(rt.failed, 0), coalesce(rt.cancelled, 0),
         coalesce(jt.dead, '{}'), s.covered_position, p_run
    from unnest(v_ids, v_covered) as s(entity_id, covered_position)
    left join jt on jt.entity_id = s.entity_id left join rt on rt.entity_id = s.entity_id
   order by s.entity_id
  on conflict (entity_id) do update
     set jobs_succeeded = p.jobs_succeeded + excluded.jobs_succeeded,
         jobs_failed = p.jobs_failed + excluded.jobs_failed,
         jobs_cancelled = p.jobs_cancelled + excluded.jobs_cancelled,
         runs_succeeded = p.runs_succeeded + excluded.runs_succeeded,
         runs_failed = p.runs_failed + excluded.runs_failed,
         runs_cancelled = p.runs_cancelled + excluded.runs_cancelled,
         -- a type pruned now supersedes the older dead job of that type pruned before
         dead_types = array(select t from unnest(p.dead_types) t
                             where t <> all (coalesce((select jt.types from jt where jt.entity_id = p.entity_id), '{}'))
                            union select unnest(excluded.dead_types) order by 1),
         covered_position = greatest(p.covered_position, excluded.covered_position),
         last_pruned_at = now(),
         last_prune_run = excluded.last_prune_run;

  delete from canon.run_rejections x where x.run_id = any (v_runs);
  get diagnostics v_rejections = row_count;
  delete from canon.job_runs r where r.id = any (v_runs);
  delete from canon.jobs j where j.id = any (v_jobs);

  update canon.prune_runs r
     set batches = r.batches + 1, entities = r.entities + v_entities, jobs = r.jobs + cardinality(v_jobs),
         runs = r.runs + cardinality(v_runs), rejections = r.rejections + v_rejections
   where r.id = p_run;
  return query select v_entities, cardinality(v_jobs), cardinality(v_runs), v_rejections;
end $$;
revoke all on function canon.prune_batch(bigint, text[]) from public;
grant execute on function canon.prune_batch(bigint, text[]) to canon_operator;

-- Ends a prune run: finished, or failed with the error that stopped it.
create or replace function canon.prune_finish(p_run bigint, p_error text default null) returns void
language sql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
  update canon.prune_runs
     set finished_at = now(), status = case when p_error is null then 'finished' else 'failed' end, error = p_error
   where id = p_run and status = 'running'
$$;
revoke all on function canon.prune_finish(bigint, text) from public;
grant execute on function canon.prune_finish(bigint, text) to canon_operator;
