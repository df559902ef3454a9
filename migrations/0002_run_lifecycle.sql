-- canon migration | class: core | breaking: no
-- How a run ends: heartbeat, completion, failure with backoff, and rescue of stuck runs.
-- Every function takes the job's row lock first, then the run's, so they never deadlock
-- against the claim (which locks jobs) or each other; each is fenced by the run: only the
-- worker that owns a running run can move it, and a late caller is refused and recorded.

create function canon.backoff_seconds(p_type text, p_attempts integer) returns numeric
language sql volatile as $$
  -- exponential with full jitter between half and all of the step (spreads retry storms)
  select least(t.backoff_max_seconds, t.backoff_base_seconds * power(2, greatest(p_attempts - 1, 0)))
         * (0.5 + random() / 2)
    from canon.job_types t where t.name = p_type
$$;

-- Locks and returns the job and run of p_run_id, and whether p_worker_id still owns the run.
create function canon.lock_run(p_run_id bigint, p_worker_id text,
                               out j canon.jobs, out r canon.job_runs, out owned boolean)
language plpgsql as $$
declare
  v_job_id bigint;
begin
  select job_id into v_job_id from canon.job_runs where id = p_run_id;
  if v_job_id is null then
    raise exception using errcode = 'CN006', message = format('run %s does not exist', p_run_id);
  end if;
  select * into j from canon.jobs where id = v_job_id for update;
  select * into r from canon.job_runs where id = p_run_id for update;
  owned := r.status = 'running' and r.worker_id = p_worker_id
           and j.status = 'running' and j.trace_id = r.trace_id;
end $$;

create function canon.reject_run(r canon.job_runs, j canon.jobs, p_worker_id text, p_action text)
returns void language sql as $$
  insert into canon.run_rejections (run_id, job_id, worker_id, trace_id, action, detail)
  values (r.id, j.id, p_worker_id, r.trace_id, p_action,
          format('run is %s (reason %s); job is %s with current trace %s',
                 r.status, coalesce(r.reason, '-'), j.status, coalesce(j.trace_id, '-')))
$$;

-- Extends the lease of the runs the worker still owns and returns them; a run missing from
-- the answer was taken away (rescued, cancelled) and its handler should stop.
create function canon.heartbeat_runs(p_worker_id text, p_run_ids bigint[])
returns setof bigint language plpgsql as $$
begin
  update canon.workers set heartbeat_at = now() where id = p_worker_id;
  return query
  with r as (
    update canon.job_runs r
       set heartbeat_at = now(),
           lease_expires_at = now() + make_interval(secs => t.timeout_seconds)
      from canon.job_types t
     where r.id = any (p_run_ids) and r.worker_id = p_worker_id and r.status = 'running' and t.name = r.type
    returning r.id, r.job_id, r.trace_id, r.lease_expires_at
  ), j as (
    update canon.jobs j set heartbeat_at = now(), lease_expires_at = r.lease_expires_at
      from r where j.id = r.job_id and j.trace_id = r.trace_id and j.status = 'running'
    returning j.id
  )
  select r.id from r;
end $$;

-- Success: the result event `<type>.succeeded` and the job's new state commit together.
-- Decision-lane runs end with p_event_kind null: their output is the required events the
-- decider appended in the same transaction.
create function canon.complete_run(p_run_id bigint, p_worker_id text, p_result jsonb default null,
                                   p_event_kind text default null)
returns table (ok boolean, event_position bigint)
language plpgsql as $$
declare
  l record;
  e canon.events;
begin
  select * into l from canon.lock_run(p_run_id, p_worker_id);
  if not l.owned then
    perform canon.reject_run(l.r, l.j, p_worker_id, 'complete');
    ok := false; return next; return;
  end if;
  if p_event_kind is not null then
    e := canon.append_event((l.j).entity_id, p_event_kind,
           jsonb_build_object('job_id', (l.j).id, 'attempt', (l.r).attempt, 'result', coalesce(p_result, 'null'::jsonb)),
           null, (l.j).correlation_id, (l.j).source_event_position, (l.r).trace_id, p_worker_id);
  end if;
  update canon.job_runs set status = 'succeeded', finished_at = now(), result_event_position = e.position
   where id = p_run_id;
  update canon.jobs set status = 'succeeded', finished_at = now(), locked_by = null, updated_at = now()
   where id = (l.j).id;
  ok := true; event_position := e.position; return next;
end $$;

-- Marks a job dead: status failed, reason kept, and for execution jobs exactly one
-- `<type>.failed` event (this is the only place that writes one, and it runs once per job
-- because it needs the job in state running or queued).
create function canon.bury_job(j canon.jobs, p_reason text, p_error text, p_trace_id text, p_actor text)
returns bigint language plpgsql as $$
declare
  e canon.events;
begin
  update canon.jobs set status = 'failed', finished_at = now(), locked_by = null, last_reason = p_reason,
                        last_error = p_error, updated_at = now()
   where id = j.id;
  if j.lane = 'execution' then
    e := canon.append_event(j.entity_id, j.type || '.failed',
           jsonb_build_object('job_id', j.id, 'attempts', j.attempts, 'reason', p_reason, 'error', p_error),
           null, j.correlation_id, j.source_event_position, p_trace_id, p_actor);
  end if;
  return e.position;
end $$;

-- Failure of one attempt. Retryable failures go back to the queue after a backoff without
-- any event (a healthy ledger has at most one result event per job); permanent failures and
-- the last attempt bury the job.
create function canon.fail_run(p_run_id bigint, p_worker_id text, p_error text, p_permanent boolean default false,
                               p_reason text default 'handler_error')
returns table (ok boolean, outcome text, event_position bigint)
language plpgsql as $$
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

-- Hands a claimed job back without spending its attempt (graceful shutdown, open breaker).
create function canon.release_run(p_run_id bigint, p_worker_id text, p_reason text default 'released')
returns boolean language plpgsql as $$
declare
  l record;
begin
  select * into l from canon.lock_run(p_run_id, p_worker_id);
  if not l.owned then
    return false;
  end if;
  update canon.job_runs set status = 'cancelled', finished_at = now(), reason = p_reason where id = p_run_id;
  update canon.jobs set status = 'queued', attempts = greatest(attempts - 1, 0), locked_by = null, locked_at = null,
                        heartbeat_at = null, lease_expires_at = null, updated_at = now()
   where id = (l.j).id;
  return true;
end $$;

-- Rescue: runs whose heartbeat is older than their type's TTL belong to a dead or frozen
-- worker. Each is marked ttl_exceeded; its job is retried after backoff or, with no attempts
-- left, buried with reason ttl_exceeded. SKIP LOCKED lets overlapping rescuers share work.
create function canon.rescue_stuck(p_limit integer default 1000)
returns table (job_id bigint, run_id bigint, outcome text)
language plpgsql as $$
declare
  j canon.jobs;
  r canon.job_runs;
  v_err text;
begin
  for j in
    select jj.* from canon.jobs jj join canon.job_types t on t.name = jj.type
     where jj.status = 'running' and jj.heartbeat_at < now() - make_interval(secs => t.timeout_seconds)
     order by jj.heartbeat_at
     limit p_limit
     for update of jj skip locked
  loop
    select * into r from canon.job_runs where trace_id = j.trace_id for update;
    v_err := format('no heartbeat since %s from worker %s (TTL exceeded)', j.heartbeat_at, j.locked_by);
    update canon.job_runs set status = 'failed', finished_at = now(), reason = 'ttl_exceeded', error = v_err
     where id = r.id;
    job_id := j.id; run_id := r.id;
    if j.attempts >= j.max_attempts then
      perform canon.bury_job(j, 'ttl_exceeded', v_err, j.trace_id, 'canon-rescuer');
      outcome := 'dead';
    else
      update canon.jobs
         set status = 'queued', locked_by = null, locked_at = null, heartbeat_at = null, lease_expires_at = null,
             run_at = now() + make_interval(secs => canon.backoff_seconds(j.type, j.attempts)),
             last_error = v_err, last_reason = 'ttl_exceeded', updated_at = now()
       where id = j.id;
      outcome := 'retry';
    end if;
    return next;
  end loop;
end $$;
