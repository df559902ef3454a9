-- canon definitions | class: core | requires: runs, steering
-- Decisions, a batch at a time: the fences, locks and reads of a batch in one call, and its
-- writes in another.

-- A batch of decisions in one transaction: canon.begin_decisions fences every run and locks
-- every entity, then hands back each entity's history and flags; the decider
-- (src/engine/decide.ts) runs the pipeline's authority for each; canon.finish_decisions
-- writes them all (each `job.<type>.required` event and its job through the gateway, what the
-- decision saw, the run's completion) and ends each run. One commit for the batch, and each
-- decision still writes only if its run is the caller's.

-- Locks, in the order every other writer takes them: the decision jobs (by entity, then id,
-- as complete_runs and heartbeat_runs do), their runs, then the entities of the runs the
-- caller owns, in entity order, so two deciders and an append never wait on each other in a
-- circle. The history is read by a statement that starts after the entity locks are held:
-- it contains every event committed before, so a decision never sees a history older than
-- the event that queued it. p_flags names the pipeline's declared flags; flags maps each to
-- its value for the entity (canon.flag_is_on). Runs the caller does not own come back with
-- owned = false and are recorded as refused; nothing else is read for them.
-- Here, in canon.finish_decisions and in canon.complete_runs, the planner reckons a batch
-- (jsonb_to_recordset, unnest) at a hundred rows or more and would join it to the whole jobs
-- and runs tables by hash, a scan that grows with the tables; sequential scans are priced
-- out so the joins walk the primary keys, and JIT is off as in canon.claim_runs. Every
-- statement is a walk of keys with one right plan at any size, so the plans are generic and
-- kept for the session: left to choose (auto), Postgres plans each of them again on every
-- call (the priced-out scans make the generic plan look dear), which at low load costs a
-- single decision more than making it.
create or replace function canon.begin_decisions(p_worker_id text, p_run_ids bigint[], p_flags text[])
returns table (run_id bigint, owned boolean, job_status text, entity_id text, events jsonb, flags jsonb)
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set jit = off
as $$
declare
  v_owned bigint[];
begin
  perform 1 from canon.jobs j
   where j.id in (select r.job_id from canon.job_runs r where r.id = any (p_run_ids))
   order by j.entity_id, j.id
   for update of j;
  perform 1 from canon.job_runs r where r.id = any (p_run_ids) order by r.id for update of r;
  select coalesce(array_agg(r.id), '{}') into v_owned
    from canon.job_runs r join canon.jobs j on j.id = r.job_id
   where r.id = any (p_run_ids) and r.worker_id = p_worker_id and r.status = 'running' and r.lane = 'decision'
     and j.status = 'running' and j.trace_id = r.trace_id;
  perform 1 from canon.entities e
   where e.id in (select r.entity_id from canon.job_runs r where r.id = any (v_owned))
   order by e.id
   for update of e;
  insert into canon.run_rejections (run_id, job_id, worker_id, trace_id, action, detail)
  select r.id, r.job_id, p_worker_id, r.trace_id, 'decide',
         format('decision run no longer owned (run is %s, job is %s)', r.status, j.status)
    from canon.job_runs r join canon.jobs j on j.id = r.job_id
   where r.id = any (p_run_ids) and not (r.id = any (v_owned));
  return query
  select r.id, r.id = any (v_owned), j.status, r.entity_id,
         case when r.id = any (v_owned) then
           coalesce((select jsonb_agg(jsonb_build_object(
                               'position', e.position, 'entity_id', e.entity_id, 'seq', e.seq, 'kind', e.kind,
                               'payload', e.payload, 'correlation_id', e.correlation_id, 'causation_id', e.causation_id,
                               'trace_id', e.trace_id, 'actor', e.actor, 'created_at', e.created_at) order by e.seq)
                       from canon.events e where e.entity_id = r.entity_id
                        and e.created_at >= canon.history_floor(r.entity_id)), '[]'::jsonb)
         end,
         case when r.id = any (v_owned) then
           coalesce((select jsonb_object_agg(f.name, canon.flag_is_on(f.name, r.entity_id))
                       from canon.flags f where f.name = any (p_flags)), '{}'::jsonb)
         end
    from canon.job_runs r join canon.jobs j on j.id = r.job_id
   where r.id = any (p_run_ids)
   order by r.entity_id;
end $$;
revoke all on function canon.begin_decisions(text, bigint[], text[]) from public;
grant execute on function canon.begin_decisions(text, bigint[], text[]) to canon_worker;

-- Writes a batch of decisions, in the caller's transaction after canon.begin_decisions (whose
-- locks it relies on). p_decisions: [{run_id, required: [{type, event_payload, job_payload,
-- dedupe_key, priority}], detail}] for decisions the authority made, and [{run_id, error}]
-- for runs whose authority threw or returned nothing valid: those fail through
-- canon.fail_run (retried with backoff, or dead when out of attempts) and the rest commits.
-- For the decisions, a few set-based statements: every `job.<type>.required` event (in entity
-- order, with the decision job's correlation, the run's trace and the job's source event as
-- cause), their jobs through the gateway (canon.enqueue_jobs), and the runs and decision jobs
-- ended as canon.complete_run ends them, each run keeping what its decision saw (detail).
-- ok = false for a run the caller does not own: nothing is written for it.
create or replace function canon.finish_decisions(p_worker_id text, p_decisions jsonb)
returns table (run_id bigint, ok boolean, outcome text)
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set jit = off
as $$
declare
  v_owned bigint[];
  v_made bigint[];
  v_jobs jsonb;
  x record;
begin
  select coalesce(array_agg(r.id), '{}') into v_owned
    from jsonb_to_recordset(p_decisions) as d(run_id bigint)
    join canon.job_runs r on r.id = d.run_id
    join canon.jobs j on j.id = r.job_id
   where r.status = 'running' and r.worker_id = p_worker_id and r.lane = 'decision'
     and j.status = 'running' and j.trace_id = r.trace_id;

  for x in
    select r, j from jsonb_to_recordset(p_decisions) as d(run_id bigint)
      join canon.job_runs r on r.id = d.run_id join canon.jobs j on j.id = r.job_id
     where not (r.id = any (v_owned))
  loop
    perform canon.reject_run(x.r, x.j, p_worker_id, 'decide');
    run_id := (x.r).id; ok := false; outcome := 'fenced'; return next;
  end loop;

  for x in
    select d.run_id, d.error from jsonb_to_recordset(p_decisions) as d(run_id bigint, error text)
     where d.error is not null and d.run_id = any (v_owned)
  loop
    run_id := x.run_id;
    select f.ok, f.outcome into ok, outcome from canon.fail_run(x.run_id, p_worker_id, x.error, false, 'handler_error') f;
    return next;
  end loop;

  select coalesce(array_agg(d.run_id), '{}') into v_made
    from jsonb_to_recordset(p_decisions) as d(run_id bigint, error text)
   where d.error is null and d.run_id = any (v_owned);
  if cardinality(v_made) = 0 then
    return;
  end if;

  -- one decision per entity in a batch (begin_decisions holds the entity locks), and one
  -- requirement per type in a decision: (entity, kind) names each required event
  with req as (
    select r.entity_id, j.correlation_id, j.source_event_position, r.trace_id, d.run_id, e.ord, e.item
      from jsonb_to_recordset(p_decisions) as d(run_id bigint, required jsonb)
      join canon.job_runs r on r.id = d.run_id
      join canon.jobs j on j.id = r.job_id
     cross join lateral jsonb_array_elements(coalesce(d.required, '[]'::jsonb)) with ordinality as e(item, ord)
     where d.run_id = any (v_made)
  ), ev as (
    insert into canon.events (entity_id, kind, payload, correlation_id, causation_id, trace_id, actor)
    select q.entity_id, format('job.%s.required', q.item->>'type'), q.item->'event_payload', q.correlation_id,
           q.source_event_position, q.trace_id, p_worker_id
      from req q
     order by q.entity_id, q.run_id, q.ord
    returning events.position, events.entity_id, events.kind
  )
  select jsonb_agg(jsonb_build_object('type', q.item->>'type', 'entity_id', q.entity_id, 'payload', q.item->'job_payload',
                                      'dedupe_key', q.item->>'dedupe_key', 'source_event', ev.position,
                                      'correlation_id', q.correlation_id, 'priority', (q.item->>'priority')::integer)
                   order by q.entity_id, q.run_id, q.ord)
    into v_jobs
    from req q join ev on ev.entity_id = q.entity_id and ev.kind = format('job.%s.required', q.item->>'type');
  if v_jobs is not null then
    perform canon.enqueue_jobs(v_jobs);
  end if;

  update canon.job_runs r
     set status = 'succeeded', finished_at = now(), detail = d.detail
    from jsonb_to_recordset(p_decisions) as d(run_id bigint, detail jsonb)
   where r.id = d.run_id and r.id = any (v_made);
  update canon.jobs j
     set status = 'succeeded', finished_at = now(), locked_by = null, updated_at = now()
    from canon.job_runs r
   where r.id = any (v_made) and j.id = r.job_id;

  return query select m.id, true, 'succeeded'::text from unnest(v_made) as m(id);
end $$;
revoke all on function canon.finish_decisions(text, jsonb) from public;
grant execute on function canon.finish_decisions(text, jsonb) to canon_worker;

-- Functions no file defines any more, removed from a database that still has them.
drop function if exists canon.begin_decision(bigint, text);
drop function if exists canon.finish_decision(bigint, text, jsonb, jsonb);
