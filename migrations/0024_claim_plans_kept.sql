-- canon migration | class: core | breaking: no
-- One claim function that keeps its plans. Since 0020 every claim planned its one big statement
-- afresh (force_custom_plan), because plpgsql's cached generic plan sized the parameter LIMIT at
-- a tenth of the queue and joined the claimed rows back to the whole jobs table by hash. That
-- planning cost ~1.2 ms per claim (EXPLAIN's planning time, warm, 20,000 queued jobs): on the
-- critical path of every batch, and most of a claim's CPU. And canon.claim_runs called
-- canon.claim_jobs, gathered its rows into an array and joined them back to the runs table by
-- trace id to learn each run's id: a third statement planned on every call.
-- Now the claim lives in canon.claim_runs as three statements whose cached plans are right for
-- any queue size and any statistics: pick and lock the ids (in the claim index's order, LIMIT
-- at the front), update exactly those rows by primary key, record their runs and return their
-- ids from the insert. Sequential scans and sorts are priced out inside these functions (as in
-- refresh_entity_status), so a plan made when the tables were nearly empty still walks the
-- indexes when they are large. canon.claim_jobs, the older API, wraps it and returns the
-- claimed jobs' rows. Same rules as 0005: lane purity, paused types, held jobs, one probe per
-- open breaker past its cooldown, trace id `<worker id>-<job id>-<attempt>`. claim_runs runs
-- as its owner, like claim_jobs always has, and gets claim_jobs's grant. A claim through either
-- commits without waiting for the disk (safe since 0023), and claim_runs_with_history keeps its
-- plan too: its one lookup is the events of an entity by the (entity_id, seq) key.
create or replace function canon.claim_runs(p_lane text, p_worker_id text, p_limit integer default 1)
returns table (run_id bigint, id bigint, lane text, type text, entity_id text, payload jsonb, attempts integer,
               max_attempts integer, correlation_id text, trace_id text, source_event_position bigint)
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set enable_sort = off as $$
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
  -- runs trigger turns it back on for the one claim after a crash that moves the ids (0023)
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
revoke execute on function canon.claim_runs(text, text, integer) from public;
grant execute on function canon.claim_runs(text, text, integer) to canon_worker;

create or replace function canon.claim_jobs(p_lane text, p_worker_id text, p_limit integer default 1)
returns setof canon.jobs
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off as $$
declare
  v_ids bigint[];
begin
  select array_agg(c.id) into v_ids from canon.claim_runs(p_lane, p_worker_id, p_limit) c;
  -- a statement of its own: it sees the rows as the claim left them
  return query select j.* from canon.jobs j where j.id = any (v_ids);
end $$;

alter function canon.claim_runs_with_history(text, text, integer) set plan_cache_mode = force_generic_plan;
alter function canon.claim_runs_with_history(text, text, integer) set enable_seqscan = off;
