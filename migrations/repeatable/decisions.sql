-- canon definitions | class: core | requires: runs, steering
-- Decisions: the decider's claim with each entity's history, and the one call that records a
-- decision (its required events and their jobs) and completes its run, fenced by the run.

-- A decision: canon.begin_decision takes the run's fence and the entity's lock in one call;
-- the decider reads the history and runs the pipeline's authority; canon.finish_decision does
-- every write of the decision in one call (each `job.<type>.required` event, its job through
-- the gateway, what the decision saw, the run's completion) through lock_entity,
-- append_event, enqueue_job and complete_run, inside the decider's transaction: a fenced
-- decider writes nothing.

-- Locks the run (lock_run's fence) and, when the caller owns it, the entity's row: decisions
-- about one entity are serialised on it, so two deciders never both require the same step.
create or replace function canon.begin_decision(p_run_id bigint, p_worker_id text)
returns table (owned boolean, job_status text, head_seq integer)
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
declare
  l record;
begin
  select * into l from canon.lock_run(p_run_id, p_worker_id);
  owned := l.owned;
  job_status := (l.j).status;
  if l.owned then
    head_seq := canon.lock_entity((l.j).entity_id);
  end if;
  return next;
end $$;
revoke all on function canon.begin_decision(bigint, text) from public;
grant execute on function canon.begin_decision(bigint, text) to canon_worker;

-- Writes a decision: for each element of p_required ({type, event_payload, job_payload,
-- dedupe_key, priority}, in order) the required event and its job through the gateway, with
-- the job's correlation, the decision's trace and the job's source event as cause, exactly as
-- the decider wrote them one by one; then the run's detail and its completion. ok = false when
-- the run was taken away meanwhile (the caller rolls back). The caller holds begin_decision's
-- locks in the same transaction.
create or replace function canon.finish_decision(p_run_id bigint, p_worker_id text, p_required jsonb, p_detail jsonb)
returns table (ok boolean, event_positions bigint[])
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
declare
  j canon.jobs;
  req jsonb;
  e canon.events;
  v_positions bigint[] := '{}';
begin
  select jb.* into j from canon.jobs jb join canon.job_runs r on r.job_id = jb.id where r.id = p_run_id;
  for req in select x from jsonb_array_elements(coalesce(p_required, '[]'::jsonb)) as x loop
    e := canon.append_event(j.entity_id, format('job.%s.required', req->>'type'), req->'event_payload', null,
                            j.correlation_id, j.source_event_position, j.trace_id, p_worker_id);
    perform canon.enqueue_job(req->>'type', j.entity_id, req->'job_payload', req->>'dedupe_key', e.position,
                              j.correlation_id, null, coalesce((req->>'priority')::integer, 0), 'execution');
    v_positions := v_positions || e.position;
  end loop;
  update canon.job_runs set detail = p_detail where id = p_run_id;
  select c.ok into ok from canon.complete_run(p_run_id, p_worker_id, null, null) c;
  event_positions := v_positions;
  return next;
end $$;
revoke all on function canon.finish_decision(bigint, text, jsonb, jsonb) from public;
grant execute on function canon.finish_decision(bigint, text, jsonb, jsonb) to canon_worker;
