-- canon definitions | class: core | requires: ledger
-- The gateway, the only code that creates jobs, and the core trigger that asks for a decision
-- in the same transaction as every appended event.

-- The only code path that creates jobs. It checks the whitelist and lane, applies the dedupe
-- key (a second request while an equal job is queued or running returns the existing job),
-- carries correlation from the source event and wakes the workers of the lane.
create or replace function canon.enqueue_job(
  p_type text, p_entity_id text, p_payload jsonb default '{}'::jsonb, p_dedupe_key text default null,
  p_source_event bigint default null, p_correlation_id text default null, p_run_at timestamptz default null,
  p_priority integer default 0, p_lane text default null
) returns table (job_id bigint, created boolean)
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
declare
  t canon.job_types;
  v_corr text;
  v_id bigint;
begin
  select * into t from canon.job_types where name = p_type;
  if not found then
    raise exception using errcode = 'CN004',
      message = format('job type "%s" is not in the job_types whitelist', p_type),
      hint = 'declare the type in the pipeline module; canon syncs it when a worker starts';
  end if;
  if p_lane is not null and p_lane <> t.lane then
    raise exception using errcode = 'CN004',
      message = format('job type "%s" belongs to the %s lane, not %s', p_type, t.lane, p_lane);
  end if;
  if p_correlation_id is null and p_source_event is not null then
    select correlation_id into v_corr from canon.events where position = p_source_event;
  end if;
  v_corr := coalesce(p_correlation_id, v_corr, p_entity_id);
  insert into canon.entities (id) values (p_entity_id) on conflict do nothing;
  perform set_config('canon.via_gateway', 'on', true);
  loop
    if t.lane = 'decision' then
      insert into canon.jobs (lane, type, entity_id, payload, priority, max_attempts, run_at, dedupe_key,
                              correlation_id, source_event_position)
      values (t.lane, p_type, p_entity_id, coalesce(p_payload, '{}'::jsonb), p_priority, t.max_attempts,
              coalesce(p_run_at, now()), p_dedupe_key, v_corr, p_source_event)
      on conflict (entity_id) where lane = 'decision' and status = 'queued' do nothing
      returning id into v_id;
      if v_id is not null then created := true; exit; end if;
      select j.id into v_id from canon.jobs j
       where j.entity_id = p_entity_id and j.lane = 'decision' and j.status = 'queued';
    elsif p_dedupe_key is null then
      insert into canon.jobs (lane, type, entity_id, payload, priority, max_attempts, run_at,
                              correlation_id, source_event_position)
      values (t.lane, p_type, p_entity_id, coalesce(p_payload, '{}'::jsonb), p_priority, t.max_attempts,
              coalesce(p_run_at, now()), v_corr, p_source_event)
      returning id into v_id;
      created := true; exit;
    else
      insert into canon.jobs (lane, type, entity_id, payload, priority, max_attempts, run_at, dedupe_key,
                              correlation_id, source_event_position)
      values (t.lane, p_type, p_entity_id, coalesce(p_payload, '{}'::jsonb), p_priority, t.max_attempts,
              coalesce(p_run_at, now()), p_dedupe_key, v_corr, p_source_event)
      on conflict (dedupe_key) where dedupe_key is not null and status in ('queued', 'running') do nothing
      returning id into v_id;
      if v_id is not null then created := true; exit; end if;
      select j.id into v_id from canon.jobs j
       where j.dedupe_key = p_dedupe_key and j.status in ('queued', 'running');
    end if;
    -- the equal job finished between our insert and our read: try the insert again
    if v_id is not null then created := false; exit; end if;
  end loop;
  perform set_config('canon.via_gateway', '', true);
  if created then
    perform pg_notify('canon_jobs', t.lane);
  end if;
  job_id := v_id;
  return next;
end $$;
revoke all on function canon.enqueue_job(text, text, jsonb, text, bigint, text, timestamp with time zone, integer, text) from public;
grant execute on function canon.enqueue_job(text, text, jsonb, text, bigint, text, timestamp with time zone, integer, text) to canon_worker, canon_operator;

-- Inserts that did not come through the gateway: refused in strict mode; in compat mode
-- accepted, completed from the whitelist, and marked (via_gateway = false) so that health,
-- alerts and `contracts check` can count and warn about them.
create or replace function canon.jobs_before_insert() returns trigger
language plpgsql
set plan_cache_mode = auto
as $$
declare
  t canon.job_types;
begin
  if current_setting('canon.via_gateway', true) = 'on' then
    new.via_gateway := true;
    return new;
  end if;
  if canon.setting('gateway_mode') = 'strict' then
    raise exception using errcode = 'CN003',
      message = 'direct INSERT into the jobs table refused: gateway mode is strict',
      hint = 'create jobs with canon.enqueue_job(...) (the gateway), or switch with `canon gateway mode compat`';
  end if;
  select * into t from canon.job_types where name = new.type;
  new.via_gateway := false;
  new.lane := coalesce(new.lane, t.lane);
  new.max_attempts := coalesce(new.max_attempts, t.max_attempts, 5);
  new.correlation_id := coalesce(new.correlation_id, new.entity_id);
  insert into canon.entities (id) values (new.entity_id) on conflict do nothing;
  raise warning 'canon: job inserted without the gateway (compat mode); it is marked and counted';
  return new;
end $$;
drop trigger if exists canon_jobs_gateway_guard on canon.jobs;
create trigger canon_jobs_gateway_guard before insert on canon.jobs
  for each row execute function canon.jobs_before_insert();

-- A decision job that goes back to the queue (retry after a failure, rescue after its TTL,
-- release on shutdown) while a newer decision about the same entity is already queued (a new
-- event during a decision is the ordinary way to get there) would violate
-- jobs_one_queued_decision, and its fail_run, release_run or rescue would raise. The queued
-- decision reads the entity's whole history when it runs, so the returning one has nothing
-- left to decide: it ends as cancelled, reason superseded, instead.
create or replace function canon.jobs_decision_superseded() returns trigger
language plpgsql as $$
begin
  -- the entity's row lock orders this against appends, whose core trigger queues decisions
  perform 1 from canon.entities where id = new.entity_id for update;
  if exists (select 1 from canon.jobs q
              where q.entity_id = new.entity_id and q.lane = 'decision' and q.status = 'queued' and q.id <> new.id) then
    new.status := 'cancelled';
    new.finished_at := now();
    new.locked_by := null;
    new.last_reason := 'superseded';
    new.last_error := coalesce(new.last_error, 'a newer decision about the entity is queued');
  end if;
  return new;
end $$;
drop trigger if exists canon_jobs_decision_superseded on canon.jobs;
create trigger canon_jobs_decision_superseded before update of status on canon.jobs
  for each row when (old.lane = 'decision' and old.status <> 'queued' and new.status = 'queued')
  execute function canon.jobs_decision_superseded();

-- The core trigger queues the decisions of a whole INSERT at once (a batch completion
-- appends many result events in one statement), through the gateway's rules: one queued
-- decision per entity.

-- One decision job per entity among the given events (the entity's first event of the batch
-- is its source), or none when the entity already has a queued decision: the same rows
-- canon.enqueue_job('decide', ...) would write event by event, in one INSERT. The three arrays
-- are parallel (position, entity, correlation of each event).
create or replace function canon.enqueue_decisions(p_positions bigint[], p_entity_ids text[], p_correlation_ids text[])
returns integer
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
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
revoke all on function canon.enqueue_decisions(bigint[], text[], text[]) from public;

-- Execution jobs many at a time, by the same rules as canon.enqueue_job: whitelisted types of
-- the execution lane only (anything else is refused, and nothing of the call is written), the
-- dedupe key (a job equal to one queued or running is not created again), correlation and
-- source event as given, one notification for the lane. p_jobs: [{type, entity_id, payload,
-- dedupe_key, source_event, correlation_id, priority}]. Returns how many jobs it created.
create or replace function canon.enqueue_jobs(p_jobs jsonb)
returns integer
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
declare
  v_bad text;
  n integer;
begin
  select x->>'type' into v_bad
    from jsonb_array_elements(p_jobs) as x
    left join canon.job_types t on t.name = x->>'type'
   where t.name is null or t.lane <> 'execution'
   limit 1;
  if found then
    raise exception using errcode = 'CN004',
      message = format('job type "%s" is not in the job_types whitelist as an execution type', v_bad),
      hint = 'declare the type in the pipeline module; canon syncs it when a worker starts';
  end if;
  insert into canon.entities (id)
  select distinct x->>'entity_id' from jsonb_array_elements(p_jobs) as x
  on conflict do nothing;
  perform set_config('canon.via_gateway', 'on', true);
  insert into canon.jobs (lane, type, entity_id, payload, priority, max_attempts, run_at, dedupe_key,
                          correlation_id, source_event_position)
  select 'execution', j.type, j.entity_id, coalesce(j.payload, '{}'::jsonb), coalesce(j.priority, 0), t.max_attempts,
         now(), j.dedupe_key, coalesce(j.correlation_id, j.entity_id), j.source_event
    from jsonb_to_recordset(p_jobs) as j(type text, entity_id text, payload jsonb, dedupe_key text, source_event bigint,
                                         correlation_id text, priority integer)
    join canon.job_types t on t.name = j.type
   order by j.entity_id, j.source_event
  on conflict (dedupe_key) where dedupe_key is not null and status in ('queued', 'running') do nothing;
  get diagnostics n = row_count;
  perform set_config('canon.via_gateway', '', true);
  if n > 0 then
    perform pg_notify('canon_jobs', 'execution');
  end if;
  return n;
end $$;
revoke all on function canon.enqueue_jobs(jsonb) from public;

-- The core trigger: always on, every appended event but a `job.<type>.required` one asks, in
-- the same transaction, for a decision about its entity (the decision that wrote a required
-- event had just read the history it extends). health, diagnose, contracts and the runbooks
-- find it by this name. An operator may have disabled it: `canon migrate` keeps that state.
create or replace function canon.core_on_events() returns trigger
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
drop trigger if exists canon_core_trigger on canon.events;
create trigger canon_core_trigger after insert on canon.events
  referencing new table as new_rows for each statement execute function canon.core_on_events();

-- The whitelist entry of one execution type, as a pipeline module declares it: created, or its
-- tuning brought in line (the pause and the breaker are the operators' and stay). A worker
-- declares every type of its pipeline when it starts; a steering command declares the one it
-- was asked about when no worker has yet (`canon jobs pause protect` on a fresh database), so
-- both roles may call it. Returns the name, or null when the name is a decision-lane type.
create or replace function canon.declare_job_type(
  p_name text, p_max_attempts integer, p_timeout_seconds numeric, p_backoff_base numeric, p_backoff_max numeric,
  p_breaker_threshold integer, p_breaker_cooldown numeric, p_declared_by text
) returns text
language sql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
  insert into canon.job_types (name, lane, max_attempts, timeout_seconds, backoff_base_seconds, backoff_max_seconds,
                               breaker_threshold, breaker_cooldown_seconds, declared_by)
  values (p_name, 'execution', p_max_attempts, p_timeout_seconds, p_backoff_base, p_backoff_max,
          p_breaker_threshold, p_breaker_cooldown, p_declared_by)
  on conflict (name) do update
     set max_attempts = excluded.max_attempts, timeout_seconds = excluded.timeout_seconds,
         backoff_base_seconds = excluded.backoff_base_seconds, backoff_max_seconds = excluded.backoff_max_seconds,
         breaker_threshold = excluded.breaker_threshold, breaker_cooldown_seconds = excluded.breaker_cooldown_seconds,
         declared_by = excluded.declared_by, updated_at = now()
   where canon.job_types.lane = 'execution'
  returning name
$$;
revoke all on function canon.declare_job_type(text, integer, numeric, numeric, numeric, integer, numeric, text) from public;
grant execute on function canon.declare_job_type(text, integer, numeric, numeric, numeric, integer, numeric, text)
  to canon_worker, canon_operator;
