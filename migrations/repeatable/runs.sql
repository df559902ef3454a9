-- canon definitions | class: core | requires: gateway
-- Runs: the claim (one statement per lane), heartbeats, completions (one at a time and
-- set-based), failures with backoff and burial, release on shutdown, rescue of stuck runs.
-- The claim calls canon.breaker_move (steering.sql, which requires this file for its triggers
-- on job_runs) when it takes a breaker's probe: plpgsql resolves that name when the claim runs.

-- The claim as the seed guides call it: canon.claim_runs (below) claims; these return the
-- claimed jobs' rows. claim_initial_decision_jobs and claim_orchestrator_jobs are the seed
-- guides' names for the two lanes. Plan settings and JIT as in canon.claim_runs.
create or replace function canon.claim_jobs(p_lane text, p_worker_id text, p_limit integer default 1)
returns setof canon.jobs
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set jit = off
as $$
declare
  v_ids bigint[];
begin
  select array_agg(c.id) into v_ids from canon.claim_runs(p_lane, p_worker_id, p_limit) c;
  -- a statement of its own: it sees the rows as the claim left them
  return query select j.* from canon.jobs j where j.id = any (v_ids);
end $$;
revoke all on function canon.claim_jobs(text, text, integer) from public;
grant execute on function canon.claim_jobs(text, text, integer) to canon_worker;

create or replace function canon.claim_initial_decision_jobs(p_worker_id text, p_limit integer default 1)
returns setof canon.jobs language sql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$ select * from canon.claim_jobs('decision', p_worker_id, p_limit) $$;
revoke all on function canon.claim_initial_decision_jobs(text, integer) from public;
grant execute on function canon.claim_initial_decision_jobs(text, integer) to canon_worker;

create or replace function canon.claim_orchestrator_jobs(p_worker_id text, p_limit integer default 1)
returns setof canon.jobs language sql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$ select * from canon.claim_jobs('execution', p_worker_id, p_limit) $$;
revoke all on function canon.claim_orchestrator_jobs(text, integer) from public;
grant execute on function canon.claim_orchestrator_jobs(text, integer) to canon_worker;

-- How a run ends: heartbeat, completion, failure with backoff, and rescue of stuck runs.
-- Every function takes the job's row lock first, then the run's, so they never deadlock
-- against the claim (which locks jobs) or each other; each is fenced by the run: only the
-- worker that owns a running run can move it, and a late caller is refused and recorded.
create or replace function canon.backoff_seconds(p_type text, p_attempts integer) returns numeric
language sql volatile as $$
  -- exponential with full jitter between half and all of the step (spreads retry storms)
  select least(t.backoff_max_seconds, t.backoff_base_seconds * power(2, greatest(p_attempts - 1, 0)))
         * (0.5 + random() / 2)
    from canon.job_types t where t.name = p_type
$$;

-- Locks and returns the job and run of p_run_id, and whether p_worker_id still owns the run.
create or replace function canon.lock_run(p_run_id bigint, p_worker_id text,
                               out j canon.jobs, out r canon.job_runs, out owned boolean)
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
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
revoke all on function canon.lock_run(bigint, text) from public;
grant execute on function canon.lock_run(bigint, text) to canon_worker;

create or replace function canon.reject_run(r canon.job_runs, j canon.jobs, p_worker_id text, p_action text)
returns void language sql as $$
  insert into canon.run_rejections (run_id, job_id, worker_id, trace_id, action, detail)
  values (r.id, j.id, p_worker_id, r.trace_id, p_action,
          format('run is %s (reason %s); job is %s with current trace %s',
                 r.status, coalesce(r.reason, '-'), j.status, coalesce(j.trace_id, '-')))
$$;

-- Extends the leases of a worker's running runs. It locks their jobs first, in the order
-- complete_runs uses (entity, then job id), and only then touches runs and jobs: complete_run,
-- fail_run and complete_runs take the job's row before the run's, and a heartbeat that went
-- the other way would deadlock against its own worker's batch completion on another
-- connection (the batch would lose its transaction and its runs wait for a TTL rescue).
create or replace function canon.heartbeat_runs(p_worker_id text, p_run_ids bigint[])
returns setof bigint language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
begin
  update canon.workers set heartbeat_at = now() where id = p_worker_id;
  perform 1 from canon.jobs j
   where j.id in (select r.job_id from canon.job_runs r
                   where r.id = any (p_run_ids) and r.worker_id = p_worker_id and r.status = 'running')
   order by j.entity_id, j.id
   for update of j;
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
revoke all on function canon.heartbeat_runs(text, bigint[]) from public;
grant execute on function canon.heartbeat_runs(text, bigint[]) to canon_worker;

-- Success: the result event `<type>.succeeded` and the job's new state commit together.
-- Decision-lane runs end with p_event_kind null: their output is the required events the
-- decider appended in the same transaction.
create or replace function canon.complete_run(p_run_id bigint, p_worker_id text, p_result jsonb default null,
                                   p_event_kind text default null)
returns table (ok boolean, event_position bigint)
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
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
revoke all on function canon.complete_run(bigint, text, jsonb, text) from public;
grant execute on function canon.complete_run(bigint, text, jsonb, text) to canon_worker;

-- Marks a job dead: status failed, reason kept, and for execution jobs exactly one
-- `<type>.failed` event (this is the only place that writes one, and it runs once per job
-- because it needs the job in state running or queued).
create or replace function canon.bury_job(j canon.jobs, p_reason text, p_error text, p_trace_id text, p_actor text)
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

-- A run that fails for good takes its entity's row before its breaker's. Burying a job
-- appends an event (the entity's row locked by the chain trigger) after the run's update (the
-- breaker's row locked by its trigger); a completion does the opposite, event first, and a
-- success resets a breaker that has counted failures. Were the order not the same, a failing
-- and a succeeding run of the same type on the same entity could each hold what the other
-- wanted. So fail_run locks the entity first when the job will be buried: entity, then
-- breaker, as a completion. (rescue_stuck buries too, but a rescue's ttl_exceeded does not
-- count against the breaker, so its run's end locks no breaker row.)
create or replace function canon.fail_run(p_run_id bigint, p_worker_id text, p_error text, p_permanent boolean default false,
                               p_reason text default 'handler_error')
returns table (ok boolean, outcome text, event_position bigint)
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
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
revoke all on function canon.fail_run(bigint, text, text, boolean, text) from public;
grant execute on function canon.fail_run(bigint, text, text, boolean, text) to canon_worker;

-- Hands a claimed job back without spending its attempt (graceful shutdown, open breaker).
create or replace function canon.release_run(p_run_id bigint, p_worker_id text, p_reason text default 'released')
returns boolean language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
declare
  l record;
begin
  select * into l from canon.lock_run(p_run_id, p_worker_id);
  if not l.owned then
    return false;
  end if;
  update canon.job_runs set status = 'cancelled', finished_at = now(), reason = p_reason where id = p_run_id;
  update canon.jobs set status = 'queued', max_attempts = max_attempts + 1, locked_by = null, locked_at = null,
                        heartbeat_at = null, lease_expires_at = null, updated_at = now()
   where id = (l.j).id;
  return true;
end $$;
revoke all on function canon.release_run(bigint, text, text) from public;
grant execute on function canon.release_run(bigint, text, text) to canon_worker;

-- Rescue: runs whose heartbeat is older than their type's TTL belong to a dead or frozen
-- worker. Each is marked ttl_exceeded; its job is retried after backoff or, with no attempts
-- left, buried with reason ttl_exceeded. SKIP LOCKED lets overlapping rescuers share work.
create or replace function canon.rescue_stuck(p_limit integer default 1000)
returns table (job_id bigint, run_id bigint, outcome text)
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
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
revoke all on function canon.rescue_stuck(integer) from public;
grant execute on function canon.rescue_stuck(integer) to canon_worker;

-- The claim: the one place where queued jobs become running runs. It takes the jobs of one
-- lane only (the decision and execution lanes never see each other's work), skips held jobs
-- and paused types, lets one probe job through per open breaker whose cooldown is over (and
-- moves that breaker to half_open), locks the rest with SKIP LOCKED in the claim index's
-- order (priority, run_at, id), marks them running with a lease of their type's timeout and
-- the trace id `<worker id>-<job id>-<attempt>`, inserts one run per job and returns the run
-- ids with the jobs.
-- Three statements whose cached plans are right for any queue size and any statistics: pick
-- and lock the ids (LIMIT at the front), update exactly those rows by primary key, record the
-- runs and return their ids from the insert. Sequential scans and sorts are priced out, so a
-- plan made when the tables were nearly empty still walks the indexes when they are large,
-- and the plan is kept rather than made again on every call (planning would cost more than
-- the claim itself). A plan that must still sort or scan sequentially (the breakers' order:
-- no index gives it) is priced at the planner's disable cost, far past jit_above_cost, so JIT
-- is off here: on a server with JIT on (Debian's and Ubuntu's packages) it would otherwise
-- compile that statement on every claim.
-- The claim commits without waiting for the disk (docs/decisions/: a lost claim is safe
-- because canon.job_runs_past_restart never lets a run id be handed out twice).
create or replace function canon.claim_runs(p_lane text, p_worker_id text, p_limit integer default 1)
returns table (run_id bigint, id bigint, lane text, type text, entity_id text, payload jsonb, attempts integer,
               max_attempts integer, correlation_id text, trace_id text, source_event_position bigint)
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set enable_sort = off
set jit = off
as $$
declare
  v_probes bigint[] := '{}';
  v_ids bigint[];
  v_type text;
  v_job bigint;
begin
  if p_lane not in ('decision', 'execution') then
    raise exception using errcode = 'CN005', message = format('unknown lane "%s"', p_lane);
  end if;
  if p_worker_id !~ '^[a-z]+-[0-9a-f-]{36}$' then
    raise exception using errcode = 'CN005',
      message = format('worker id "%s" is not <role>-<uuid>', p_worker_id);
  end if;
  if p_limit <= 0 then
    return;
  end if;
  -- local to this transaction (the caller's later transactions commit as configured); the
  -- runs trigger turns it back on for the one claim after a crash that moves the ids
  perform set_config('synchronous_commit', 'off', true);
  for v_type in
    select b.job_type from canon.breakers b join canon.job_types t on t.name = b.job_type
     where b.state = 'open' and b.next_attempt_at <= now() and t.lane = p_lane and not t.paused
     order by b.next_attempt_at
     for update of b skip locked
  loop
    exit when cardinality(v_probes) >= p_limit;
    select j.id into v_job from canon.jobs j
     where j.lane = p_lane and j.type = v_type and j.status = 'queued' and j.run_at <= now() and j.hold_reason is null
     order by j.priority, j.run_at, j.id
     limit 1
     for update skip locked;
    if v_job is not null then
      v_probes := v_probes || v_job;
      perform canon.breaker_move(v_type, 'half_open', null, v_job, p_worker_id,
                                 format('cooldown over: job %s is the probe', v_job));
    end if;
  end loop;
  v_ids := v_probes || array(
    select j.id
      from canon.jobs j
      join canon.job_types t on t.name = j.type
     where j.lane = p_lane
       and j.status = 'queued'
       and j.run_at <= now()
       and j.hold_reason is null
       and not t.paused
       and not exists (select 1 from canon.breakers b where b.job_type = j.type and b.state <> 'closed')
     order by j.priority, j.run_at, j.id
     limit p_limit - cardinality(v_probes)
     for update of j skip locked);
  if cardinality(v_ids) = 0 then
    return;
  end if;
  return query
  with claimed as (
    update canon.jobs j
       set status = 'running', attempts = j.attempts + 1, locked_by = p_worker_id, locked_at = now(),
           heartbeat_at = now(), lease_expires_at = now() + make_interval(secs => t.timeout_seconds),
           trace_id = p_worker_id || '-' || j.id || '-' || (j.attempts + 1), updated_at = now()
      from canon.job_types t
     where j.id = any (v_ids) and t.name = j.type
    returning j.*
  ), runs as (
    insert into canon.job_runs (job_id, attempt, lane, type, entity_id, worker_id, trace_id, correlation_id,
                                lease_expires_at)
    select c.id, c.attempts, c.lane, c.type, c.entity_id, p_worker_id, c.trace_id, c.correlation_id,
           c.lease_expires_at
      from claimed c
    returning job_runs.id, job_runs.job_id
  )
  select r.id, c.id, c.lane, c.type, c.entity_id, c.payload, c.attempts, c.max_attempts, c.correlation_id, c.trace_id,
         c.source_event_position
    from claimed c join runs r on r.job_id = c.id;
end $$;
revoke all on function canon.claim_runs(text, text, integer) from public;
grant execute on function canon.claim_runs(text, text, integer) to canon_worker;

-- Set-based completion: many runs in one call and one commit, each fenced by its own run.
-- p_runs: a JSON array of {run_id, worker_id, result, event_kind}. Locks in the order of
-- lock_run and heartbeat_runs: the jobs by entity then id, then their runs, so a
-- batch, a heartbeat and a rescue cannot deadlock. The result events are inserted in entity
-- order, so two runs of one entity in a batch chain one after the other.
create or replace function canon.complete_runs(p_runs jsonb)
returns table (run_id bigint, ok boolean, event_position bigint)
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
set plan_cache_mode = force_custom_plan
set enable_seqscan = off
set jit = off
as $$
declare
  v_missing bigint;
  v_ids bigint[];
  v_owned bigint[];
  x record;
begin
  select coalesce(array_agg(distinct i.run_id), '{}') into v_ids
    from jsonb_to_recordset(p_runs) as i(run_id bigint);
  -- a run that does not exist is the caller's bug, exactly as in lock_run (checked by
  -- counting index hits: an anti-join against the whole runs table was planned as a scan)
  if array_position(v_ids, null) is not null
     or (select count(*) from canon.job_runs r where r.id = any (v_ids)) <> cardinality(v_ids) then
    select v.id into v_missing from unnest(v_ids) as v(id)
     where v.id is null or not exists (select 1 from canon.job_runs r where r.id = v.id) limit 1;
    raise exception using errcode = 'CN006', message = format('run %s does not exist', coalesce(v_missing::text, 'null'));
  end if;
  perform 1 from canon.jobs j
   where j.id in (select r.job_id from canon.job_runs r where r.id = any (v_ids))
   order by j.entity_id, j.id
   for update of j;
  perform 1 from canon.job_runs r where r.id = any (v_ids) order by r.id for update of r;

  -- the fence of lock_run: the run is running, is this worker's, and is its job's current run
  select coalesce(array_agg(r.id), '{}') into v_owned
    from (select distinct on (i.run_id) i.run_id, i.worker_id
            from jsonb_to_recordset(p_runs) as i(run_id bigint, worker_id text)) i
    join canon.job_runs r on r.id = i.run_id
    join canon.jobs j on j.id = r.job_id
   where r.status = 'running' and r.worker_id = i.worker_id and j.status = 'running' and j.trace_id = r.trace_id;

  if cardinality(v_owned) < cardinality(v_ids) then
    for x in
      select r, j, i.worker_id
        from (select distinct on (i.run_id) i.run_id, i.worker_id
                from jsonb_to_recordset(p_runs) as i(run_id bigint, worker_id text)) i
        join canon.job_runs r on r.id = i.run_id
        join canon.jobs j on j.id = r.job_id
       where not (r.id = any (v_owned))
    loop
      perform canon.reject_run(x.r, x.j, x.worker_id, 'complete');
    end loop;
  end if;

  return query
  with done as (
    select distinct on (i.run_id) i.run_id, i.worker_id, i.result, i.event_kind, r.attempt, r.trace_id,
           j.id as job_id, j.entity_id, j.correlation_id, j.source_event_position
      from canon.job_runs r
      join canon.jobs j on j.id = r.job_id
      join jsonb_to_recordset(p_runs) as i(run_id bigint, worker_id text, result jsonb, event_kind text) on i.run_id = r.id
     where r.id = any (v_owned)
  ), ev as (
    insert into canon.events (entity_id, kind, payload, correlation_id, causation_id, trace_id, actor)
    select d.entity_id, d.event_kind,
           jsonb_build_object('job_id', d.job_id, 'attempt', d.attempt, 'result', coalesce(d.result, 'null'::jsonb)),
           d.correlation_id, d.source_event_position, d.trace_id, d.worker_id
      from done d
     where d.event_kind is not null
     order by d.entity_id, d.job_id, d.run_id
    returning events.position, events.trace_id
  ), runs as (
    update canon.job_runs r
       set status = 'succeeded', finished_at = now(), result_event_position = ev.position
      from done d left join ev on ev.trace_id = d.trace_id
     where r.id = d.run_id
    returning r.id
  ), jobs as (
    update canon.jobs j
       set status = 'succeeded', finished_at = now(), locked_by = null, updated_at = now()
      from done d
     where j.id = d.job_id
    returning j.id
  )
  select v.id, v.id = any (v_owned), ev.position
    from unnest(v_ids) as v(id)
    left join done d on d.run_id = v.id
    left join ev on ev.trace_id = d.trace_id;
  -- (runs and jobs are not read: a writable CTE runs to completion whether or not it is)
end $$;
revoke all on function canon.complete_runs(jsonb) from public;
grant execute on function canon.complete_runs(jsonb) to canon_worker;

-- The execution worker's claim: canon.claim_runs (same claim, same asynchronous commit, same
-- answer) with each job's entity history as a JSON array in seq order, the columns of
-- canon.events a handler sees, so that a batch's handlers start after one round trip, not two.
-- The history is read right after the claim, in the claim's transaction; the decider reads
-- its history itself, under the entity's lock. Its one lookup is the events of an entity by
-- the (entity_id, seq) key, so its plan is kept too (JIT off as in canon.claim_runs).
create or replace function canon.claim_runs_with_history(p_lane text, p_worker_id text, p_limit integer default 1)
returns table (run_id bigint, id bigint, lane text, type text, entity_id text, payload jsonb, attempts integer,
               max_attempts integer, correlation_id text, trace_id text, source_event_position bigint, events jsonb)
language plpgsql
set search_path = pg_catalog, canon, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set jit = off
as $$
begin
  return query
  select c.run_id, c.id, c.lane, c.type, c.entity_id, c.payload, c.attempts, c.max_attempts, c.correlation_id,
         c.trace_id, c.source_event_position,
         coalesce((select jsonb_agg(jsonb_build_object(
                             'position', e.position, 'entity_id', e.entity_id, 'seq', e.seq, 'kind', e.kind,
                             'payload', e.payload, 'correlation_id', e.correlation_id, 'causation_id', e.causation_id,
                             'trace_id', e.trace_id, 'actor', e.actor, 'created_at', e.created_at) order by e.seq)
                     from canon.events e where e.entity_id = c.entity_id
                      and e.created_at >= canon.history_floor(c.entity_id)), '[]'::jsonb)
    from canon.claim_runs(p_lane, p_worker_id, p_limit) c;
end $$;

-- A run id is never handed out twice, even after a crash lost the claim that first used it
-- (claims commit without waiting for the disk). Crash recovery empties the unlogged
-- canon.run_id_guard; the first insert of runs in each session that finds it empty (after a
-- crash of the server or of any backend, on a promoted standby, on a restored base backup)
-- moves the run id sequence 10,000,000 ids past where recovery left it, puts the row back and
-- commits that transaction durably whatever the caller asked for. Ids issued before the crash
-- and possibly lost lie within a few WAL-writer cycles of the last flushed sequence record,
-- far fewer than the jump.
create or replace function canon.job_runs_past_restart() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
begin
  -- once per session: sessions do not outlive a crash
  if current_setting('canon.run_id_guard', true) is distinct from 'seen' then
    if not exists (select from canon.run_id_guard) then
      -- one session moves the ids; the others wait here and then find the row
      perform pg_advisory_xact_lock(hashtext('canon.run_id_guard'));
      if not exists (select from canon.run_id_guard) then
        perform setval(pg_get_serial_sequence('canon.job_runs', 'id'),
                       nextval(pg_get_serial_sequence('canon.job_runs', 'id')) + 10000000);
        insert into canon.run_id_guard default values;
        perform set_config('synchronous_commit', 'on', true);
      end if;
    end if;
    perform set_config('canon.run_id_guard', 'seen', false);
  end if;
  return null;
end $$;
revoke all on function canon.job_runs_past_restart() from public;
drop trigger if exists canon_job_runs_past_restart on canon.job_runs;
create trigger canon_job_runs_past_restart before insert on canon.job_runs
  for each statement execute function canon.job_runs_past_restart();
