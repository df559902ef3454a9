-- canon migration | class: core | breaking: no
-- A batch of successful runs ends in a few set-based statements instead of a loop of
-- canon.complete_run calls, and the core trigger queues the decisions of a whole INSERT at
-- once. Measured on a batch of 100 no-op completions (one session, min of 8): 65 ms before,
-- 22 ms after. The per-row loop paid plpgsql's per-statement cost about twenty times per run
-- (lock, fence, append, two updates, and the gateway call of the core trigger with its own
-- half-dozen statements), and fired the status triggers once per row instead of once per
-- statement. What each run goes through is unchanged: the same fence (only the owner of a
-- running run ends it; anyone else is refused and recorded in run_rejections), one result
-- event per run written through the hash chain trigger, the same columns set on the run and
-- the job, and one queued decision per entity through the gateway.

-- ─── the gateway's batch form for the core trigger ──────────────────────────────────────
-- One decision job per entity among the given events (the entity's first event of the batch
-- is its source), or none when the entity already has a queued decision: the same rows
-- canon.enqueue_job('decide', ...) would write event by event, in one INSERT. The three arrays
-- are parallel (position, entity, correlation of each event).
create function canon.enqueue_decisions(p_positions bigint[], p_entity_ids text[], p_correlation_ids text[])
returns integer
language plpgsql
security definer set search_path = pg_catalog, canon, pg_temp as $$
declare
  t canon.job_types;
  n integer;
begin
  select * into t from canon.job_types where name = 'decide';
  if not found or t.lane <> 'decision' then
    raise exception using errcode = 'CN004', message = 'job type "decide" is not in the job_types whitelist as a decision type';
  end if;
  perform set_config('canon.via_gateway', 'on', true);
  insert into canon.jobs (lane, type, entity_id, payload, priority, max_attempts, run_at, correlation_id,
                          source_event_position)
  select distinct on (e.entity_id) 'decision', 'decide', e.entity_id, '{}'::jsonb, 0, t.max_attempts, now(),
         coalesce(e.correlation_id, e.entity_id), e.position
    from unnest(p_positions, p_entity_ids, p_correlation_ids) as e(position, entity_id, correlation_id)
   order by e.entity_id, e.position
  on conflict (entity_id) where lane = 'decision' and status = 'queued' do nothing;
  get diagnostics n = row_count;
  perform set_config('canon.via_gateway', '', true);
  if n > 0 then
    perform pg_notify('canon_jobs', 'decision');
  end if;
  return n;
end $$;
revoke execute on function canon.enqueue_decisions(bigint[], text[], text[]) from public;

-- ─── the core trigger, once per statement ───────────────────────────────────────────────
-- Same name, same rule (every event but a job.<type>.required one asks for a decision), so
-- health, diagnose, contracts and the runbooks that enable or disable it by name still do.
-- An operator may have disabled it: the state it had is kept.
create function canon.core_on_events() returns trigger
language plpgsql as $$
begin
  perform canon.enqueue_decisions(array_agg(n.position order by n.position),
                                  array_agg(n.entity_id order by n.position),
                                  array_agg(n.correlation_id order by n.position))
     from new_rows n
    where n.kind not like 'job.%.required'
   having count(*) > 0;
  return null;
end $$;

do $$
declare
  v_state "char";
begin
  select tgenabled into v_state from pg_trigger
   where tgrelid = 'canon.events'::regclass and tgname = 'canon_core_trigger';
  drop trigger if exists canon_core_trigger on canon.events;
  create trigger canon_core_trigger after insert on canon.events
    referencing new table as new_rows for each statement execute function canon.core_on_events();
  if v_state = 'D' then
    alter table canon.events disable trigger canon_core_trigger;
  elsif v_state = 'A' then
    alter table canon.events enable always trigger canon_core_trigger;
  elsif v_state = 'R' then
    alter table canon.events enable replica trigger canon_core_trigger;
  end if;
end $$;
drop function canon.core_on_event();

-- ─── many completions, set-based ────────────────────────────────────────────────────────
-- p_runs: a JSON array of {run_id, worker_id, result, event_kind}. Locks in the order of
-- lock_run and heartbeat_runs (0014): the jobs by entity then id, then their runs, so a
-- batch, a heartbeat and a rescue cannot deadlock. The result events are inserted in entity
-- order, so two runs of one entity in a batch chain one after the other.
create or replace function canon.complete_runs(p_runs jsonb)
returns table (run_id bigint, ok boolean, event_position bigint)
language plpgsql
security definer set search_path = pg_catalog, canon, pg_temp as $$
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
revoke execute on function canon.complete_runs(jsonb) from public;
grant execute on function canon.complete_runs(jsonb) to canon_worker;
