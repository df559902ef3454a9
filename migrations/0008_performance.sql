-- canon migration | class: core | breaking: no
-- Fewer round trips and commits per job. A worker claims a batch and learns the run ids in
-- the same call (canon.claim_runs), and ends many successful runs in one transaction
-- (canon.complete_runs): one round trip and one WAL flush for the batch instead of one per
-- job, with the status refresh of 0004 done once at commit for all of them. Each run still
-- goes through canon.complete_run, so the per-run fence (only the owner of a running run can
-- end it; a late caller is refused and recorded) and the single result event per run are the
-- function's own. Both are SECURITY INVOKER wrappers: a caller can do through them exactly
-- what it may do through claim_jobs and complete_run directly (0010 grants those), nothing
-- more, so they need no grants of their own.

-- The claim of canon.claim_jobs (same lane purity, paused types, held jobs, breakers and
-- half-open probe) with each job's run id. Two statements on purpose: the runs inserted by
-- the claim are visible to the second one, not to the statement that made them.
create function canon.claim_runs(p_lane text, p_worker_id text, p_limit integer default 1)
returns table (run_id bigint, id bigint, lane text, type text, entity_id text, payload jsonb, attempts integer,
               max_attempts integer, correlation_id text, trace_id text, source_event_position bigint)
language plpgsql set search_path = pg_catalog, canon, pg_temp as $$
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

-- Ends many runs in one transaction: p_runs is a JSON array of
-- {run_id, worker_id, result, event_kind}. Runs are completed in entity order (then job id),
-- so two batches that share entities take their row locks in the same order and cannot
-- deadlock on them. A run that is no longer its worker's comes back with ok = false and is
-- recorded in run_rejections, exactly as with canon.complete_run.
create function canon.complete_runs(p_runs jsonb)
returns table (run_id bigint, ok boolean, event_position bigint)
language plpgsql set search_path = pg_catalog, canon, pg_temp as $$
declare
  x record;
  c record;
begin
  for x in
    select i.run_id, i.worker_id, i.result, i.event_kind
      from jsonb_to_recordset(p_runs) as i(run_id bigint, worker_id text, result jsonb, event_kind text)
      left join canon.job_runs r on r.id = i.run_id
     order by r.entity_id, r.job_id, i.run_id
  loop
    select * into c from canon.complete_run(x.run_id, x.worker_id, x.result, x.event_kind);
    run_id := x.run_id;
    ok := c.ok;
    event_position := c.event_position;
    return next;
  end loop;
end $$;
