-- canon migration | class: core | breaking: no
-- Takes back 0017: a claim commits durably again. With the claim's commit not waiting for its
-- WAL flush, a server crash can lose the claim together with the WAL record that advanced the
-- run id sequence, and after recovery the sequence hands the same run ids out again. A worker
-- still holding a run of the lost claim then presents an id that now names someone else's
-- claim — possibly its own new claim of a different job — and lock_run's fence (run running,
-- this worker's, the job's current run) cannot tell them apart: a decider would decide about
-- the wrong entity with the right one's history, an executor would complete the wrong job
-- with another job's result. Safe asynchronous claims need every run function to fence on the
-- run's trace id as well; until then, durability wins over the ~20 % it bought in the no-op
-- benchmark. Same body as 0017 without the set_config, with 0020's per-call plans.
create or replace function canon.claim_runs(p_lane text, p_worker_id text, p_limit integer default 1)
returns table (run_id bigint, id bigint, lane text, type text, entity_id text, payload jsonb, attempts integer,
               max_attempts integer, correlation_id text, trace_id text, source_event_position bigint)
language plpgsql
set search_path = pg_catalog, canon, pg_temp
set plan_cache_mode = force_custom_plan as $$
declare
  v_jobs canon.jobs[];
begin
  select coalesce(array_agg(j), '{}') into v_jobs from canon.claim_jobs(p_lane, p_worker_id, p_limit) j;
  return query
  select r.id, j.id, j.lane, j.type, j.entity_id, j.payload, j.attempts, j.max_attempts, j.correlation_id, j.trace_id,
         j.source_event_position
    from unnest(v_jobs) with ordinality as j
    join canon.job_runs r on r.trace_id = j.trace_id
   order by j.ordinality;
end $$;
