-- canon migration | class: core | breaking: no
-- A run that fails for good takes its entity's row before its breaker's. Burying a job
-- appends an event (the entity's row locked by the chain trigger) after the run's update (the
-- breaker's row locked by its trigger); a completion does the opposite, event first, and a
-- success resets a breaker that has counted failures. A failing and a succeeding run of the
-- same type on the same entity could each hold what the other wanted: the status test's
-- concurrent workers met it once ("deadlock detected" between fail_run and complete_run, the
-- victim waiting on the entities row). fail_run now locks the entity first when the job will
-- be buried: entity, then breaker, as a completion. (rescue_stuck buries too, but a rescue's
-- ttl_exceeded does not count against the breaker, so its run's end locks no breaker row.)
-- Body as in 0002 otherwise, with 0010's SECURITY DEFINER and pinned search_path restated.
create or replace function canon.fail_run(p_run_id bigint, p_worker_id text, p_error text, p_permanent boolean default false,
                               p_reason text default 'handler_error')
returns table (ok boolean, outcome text, event_position bigint)
language plpgsql security definer set search_path = pg_catalog, canon, pg_temp as $$
declare
  l record;
  v_reason text := coalesce(p_reason, 'handler_error');
  v_pos bigint;
begin
  select * into l from canon.lock_run(p_run_id, p_worker_id);
  if not l.owned then
    perform canon.reject_run(l.r, l.j, p_worker_id, 'fail');
    ok := false; outcome := 'fenced'; return next; return;
  end if;
  if p_permanent or (l.j).attempts >= (l.j).max_attempts then
    -- the burial appends an event: take its entity's row before the run's update locks the
    -- breaker, the order of a completion (event, then run)
    perform 1 from canon.entities where id = (l.j).entity_id for update;
  end if;
  update canon.job_runs set status = 'failed', finished_at = now(), reason = v_reason, error = left(p_error, 8000)
   where id = p_run_id;
  if p_permanent or (l.j).attempts >= (l.j).max_attempts then
    v_pos := canon.bury_job(l.j, case when p_permanent then v_reason else 'max_attempts_exceeded' end,
                            left(p_error, 8000), (l.r).trace_id, p_worker_id);
    ok := true; outcome := 'dead'; event_position := v_pos; return next; return;
  end if;
  update canon.jobs
     set status = 'queued', locked_by = null, locked_at = null, heartbeat_at = null, lease_expires_at = null,
         run_at = now() + make_interval(secs => canon.backoff_seconds((l.j).type, (l.j).attempts)),
         last_error = left(p_error, 8000), last_reason = v_reason, updated_at = now()
   where id = (l.j).id;
  ok := true; outcome := 'retry'; return next;
end $$;
