-- canon migration | class: core | breaking: no
-- The canonical schema: the ledger (entities, events), the one queue (jobs, job_runs), the
-- job-type whitelist, the gateway that is the only way a job is created, the core trigger,
-- the lane claims, flags with their change history, and the settings operators steer.

create schema if not exists canon;

-- ─── settings ───────────────────────────────────────────────────────────────────────────
create table canon.settings (
  key        text primary key,
  value      text not null,
  updated_at timestamptz not null default now(),
  updated_by text not null default session_user
);
insert into canon.settings (key, value) values
  ('gateway_mode', 'compat'),
  ('runtime_version', 'canon-1'),
  -- jobs created at or after this instant must carry a trace_id once they have run
  ('trace_policy_cutoff', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));

create function canon.setting(p_key text) returns text
language sql stable as $$ select value from canon.settings where key = p_key $$;

-- ─── the ledger ─────────────────────────────────────────────────────────────────────────
create table canon.entities (
  id         text primary key check (length(id) between 1 and 200),
  created_at timestamptz not null default now(),
  head_seq   integer not null default 0,
  head_hash  bytea
);

create table canon.events (
  position       bigint generated always as identity,
  entity_id      text not null references canon.entities (id),
  seq            integer not null check (seq >= 1),
  kind           text not null check (kind ~ '^[A-Za-z0-9_.:-]{1,200}$'),
  payload        jsonb not null default '{}'::jsonb,
  correlation_id text not null,
  causation_id   bigint,      -- position of the event that led to this one
  trace_id       text,        -- trace id of the run that wrote it; null for client appends
  actor          text not null,
  created_at     timestamptz not null,
  prev_hash      bytea,
  hash           bytea not null,
  primary key (entity_id, seq)
);
create unique index events_position_key on canon.events (position);
create index events_created_at_idx on canon.events (created_at);
create index events_correlation_idx on canon.events (correlation_id);
create index events_kind_idx on canon.events (kind, created_at);

-- The hash of one event: SHA-256 over the previous hash and every field a reader relies on,
-- separated by a unit separator so that no two field lists hash alike. jsonb's text form is
-- canonical (keys sorted, whitespace normalised), so equal payloads hash equally anywhere.
create function canon.event_hash(
  p_prev bytea, p_entity_id text, p_seq integer, p_kind text, p_payload jsonb,
  p_correlation_id text, p_causation_id bigint, p_trace_id text, p_actor text, p_created_at timestamptz
) returns bytea language sql immutable parallel safe as $$
  select sha256(coalesce(p_prev, '\x'::bytea) || convert_to(concat_ws(chr(31),
    p_entity_id, p_seq::text, p_kind, p_payload::text, p_correlation_id,
    coalesce(p_causation_id::text, ''), coalesce(p_trace_id, ''), p_actor,
    to_char(p_created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')), 'UTF8'))
$$;

-- Every insert takes the entity's row lock, so seq is gap-free and the chain is linear even
-- with many concurrent writers. A caller that names a seq (optimistic concurrency) and is
-- not next gets CN001 instead of a silent reorder.
create function canon.events_before_insert() returns trigger
language plpgsql as $$
declare
  v_head_seq integer;
  v_head_hash bytea;
begin
  select head_seq, head_hash into v_head_seq, v_head_hash
    from canon.entities where id = new.entity_id for update;
  if not found then
    insert into canon.entities (id) values (new.entity_id) on conflict do nothing;
    select head_seq, head_hash into v_head_seq, v_head_hash
      from canon.entities where id = new.entity_id for update;
  end if;
  if new.seq is null then
    new.seq := v_head_seq + 1;
  elsif new.seq <> v_head_seq + 1 then
    raise exception using errcode = 'CN001',
      message = format('stale expected seq for entity %s: expected %s, but the entity is at seq %s',
                       new.entity_id, new.seq - 1, v_head_seq),
      hint = 'read the entity again and retry with its current seq';
  end if;
  new.created_at := clock_timestamp();
  new.correlation_id := coalesce(nullif(new.correlation_id, ''), new.entity_id);
  new.actor := coalesce(nullif(new.actor, ''), session_user);
  new.prev_hash := v_head_hash;
  new.hash := canon.event_hash(new.prev_hash, new.entity_id, new.seq, new.kind, new.payload,
                               new.correlation_id, new.causation_id, new.trace_id, new.actor, new.created_at);
  update canon.entities set head_seq = new.seq, head_hash = new.hash where id = new.entity_id;
  return new;
end $$;
create trigger canon_events_chain before insert on canon.events
  for each row execute function canon.events_before_insert();

create function canon.events_refuse_change() returns trigger
language plpgsql as $$
begin
  raise exception using errcode = 'CN002',
    message = format('canon.events is append-only: %s is refused', tg_op),
    hint = 'append a correcting event instead';
end $$;
create trigger canon_events_immutable before update or delete on canon.events
  for each row execute function canon.events_refuse_change();
create trigger canon_events_no_truncate before truncate on canon.events
  for each statement execute function canon.events_refuse_change();

create function canon.append_event(
  p_entity_id text, p_kind text, p_payload jsonb default '{}'::jsonb, p_expected_seq integer default null,
  p_correlation_id text default null, p_causation_id bigint default null, p_trace_id text default null,
  p_actor text default null
) returns canon.events language sql as $$
  insert into canon.events (entity_id, seq, kind, payload, correlation_id, causation_id, trace_id, actor)
  values (p_entity_id, p_expected_seq + 1, p_kind, coalesce(p_payload, '{}'::jsonb),
          p_correlation_id, p_causation_id, p_trace_id, p_actor)
  returning *
$$;

-- ─── job types (the whitelist) and breakers ────────────────────────────────────────────
create table canon.job_types (
  name                     text primary key check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  lane                     text not null check (lane in ('decision', 'execution')),
  max_attempts             integer not null default 5 check (max_attempts between 1 and 1000),
  timeout_seconds          numeric not null default 300 check (timeout_seconds > 0),
  backoff_base_seconds     numeric not null default 1 check (backoff_base_seconds >= 0),
  backoff_max_seconds      numeric not null default 300 check (backoff_max_seconds >= 0),
  breaker_threshold        integer not null default 10 check (breaker_threshold >= 1),
  breaker_cooldown_seconds numeric not null default 30 check (breaker_cooldown_seconds > 0),
  paused                   boolean not null default false,
  paused_at                timestamptz,
  paused_by                text,
  pause_reason             text,
  declared_by              text not null default 'canon',
  created_at               timestamptz not null default now(),
  updated_at               timestamptz not null default now()
);
insert into canon.job_types (name, lane, max_attempts, timeout_seconds, backoff_base_seconds, backoff_max_seconds)
values ('decide', 'decision', 10, 60, 0.5, 60);

create table canon.breakers (
  job_type        text primary key references canon.job_types (name),
  state           text not null default 'closed' check (state in ('closed', 'open', 'half_open')),
  failure_count   integer not null default 0,
  opened_at       timestamptz,
  next_attempt_at timestamptz,
  probe_job_id    bigint,
  updated_at      timestamptz not null default now(),
  updated_by      text
);

-- ─── the queue ──────────────────────────────────────────────────────────────────────────
create table canon.jobs (
  id                    bigint generated always as identity primary key,
  lane                  text not null check (lane in ('decision', 'execution')),
  type                  text not null references canon.job_types (name),
  entity_id             text not null references canon.entities (id),
  status                text not null default 'queued'
                        check (status in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  payload               jsonb not null default '{}'::jsonb,
  priority              integer not null default 0,
  attempts              integer not null default 0 check (attempts >= 0),
  max_attempts          integer not null check (max_attempts >= 1),
  run_at                timestamptz not null default now(),
  locked_by             text,
  locked_at             timestamptz,
  heartbeat_at          timestamptz,
  lease_expires_at      timestamptz,
  dedupe_key            text,
  correlation_id        text not null,
  trace_id              text,
  source_event_position bigint,
  via_gateway           boolean not null default false,
  hold_reason           text,        -- set while a steering action holds the job (kill switch)
  last_error            text,
  last_reason           text,
  created_by            text not null default session_user,
  created_at            timestamptz not null default now(),
  updated_at            timestamptz not null default now(),
  finished_at           timestamptz,
  constraint jobs_running_is_locked check ((status = 'running') = (locked_by is not null)),
  constraint jobs_finished_has_time check ((status in ('succeeded', 'failed', 'cancelled')) = (finished_at is not null))
);
create index jobs_claim_idx on canon.jobs (lane, priority, run_at, id) where status = 'queued';
create unique index jobs_dedupe_key on canon.jobs (dedupe_key)
  where dedupe_key is not null and status in ('queued', 'running');
-- the core trigger keeps at most one queued decision job per entity
create unique index jobs_one_queued_decision on canon.jobs (entity_id)
  where lane = 'decision' and status = 'queued';
create index jobs_entity_idx on canon.jobs (entity_id, id);
create index jobs_correlation_idx on canon.jobs (correlation_id);
create index jobs_running_idx on canon.jobs (heartbeat_at) where status = 'running';
create index jobs_failed_idx on canon.jobs (finished_at) where status = 'failed';
create index jobs_source_event_idx on canon.jobs (source_event_position);
create index jobs_bypass_idx on canon.jobs (created_at) where not via_gateway;
create index jobs_queued_type_idx on canon.jobs (type, run_at) where status = 'queued';

create table canon.job_runs (
  id                    bigint generated always as identity primary key,
  job_id                bigint not null references canon.jobs (id),
  attempt               integer not null check (attempt >= 1),
  lane                  text not null,
  type                  text not null,
  entity_id             text not null,
  worker_id             text not null,
  trace_id              text not null unique,
  correlation_id        text not null,
  status                text not null default 'running'
                        check (status in ('running', 'succeeded', 'failed', 'cancelled')),
  reason                text check (reason in ('ttl_exceeded', 'max_attempts_exceeded', 'handler_error',
                                               'precondition_failed', 'timeout', 'released', 'cancelled', 'breaker_open')),
  error                 text,
  started_at            timestamptz not null default now(),
  heartbeat_at          timestamptz not null default now(),
  lease_expires_at      timestamptz not null,
  finished_at           timestamptz,
  result_event_position bigint,
  unique (job_id, attempt),
  constraint runs_finished_has_time check ((status = 'running') = (finished_at is null))
);
create index job_runs_started_idx on canon.job_runs (started_at);
create index job_runs_finished_idx on canon.job_runs (finished_at) where finished_at is not null;
create index job_runs_running_idx on canon.job_runs (heartbeat_at) where status = 'running';
create index job_runs_worker_idx on canon.job_runs (worker_id);

-- A worker whose run was rescued and that came back late is refused; the refusal is kept.
create table canon.run_rejections (
  id          bigint generated always as identity primary key,
  run_id      bigint not null references canon.job_runs (id),
  job_id      bigint not null,
  worker_id   text not null,
  trace_id    text not null,
  action      text not null check (action in ('complete', 'fail', 'heartbeat', 'decide')),
  detail      text not null,
  rejected_at timestamptz not null default now()
);

-- Live workers announce themselves and heartbeat here (health and watch read it).
create table canon.workers (
  id           text primary key check (id ~ '^[a-z]+-[0-9a-f-]{36}$'),
  role         text not null,
  lanes        text[] not null,
  pid          integer,
  host         text,
  concurrency  integer not null default 1,
  in_flight    integer not null default 0,
  pipeline     text,
  version      text,
  started_at   timestamptz not null default now(),
  heartbeat_at timestamptz not null default now(),
  stopped_at   timestamptz
);
create index workers_heartbeat_idx on canon.workers (heartbeat_at) where stopped_at is null;

-- ─── the gateway ────────────────────────────────────────────────────────────────────────
-- The only code path that creates jobs. It checks the whitelist and lane, applies the dedupe
-- key (a second request while an equal job is queued or running returns the existing job),
-- carries correlation from the source event and wakes the workers of the lane.
create function canon.enqueue_job(
  p_type text, p_entity_id text, p_payload jsonb default '{}'::jsonb, p_dedupe_key text default null,
  p_source_event bigint default null, p_correlation_id text default null, p_run_at timestamptz default null,
  p_priority integer default 0, p_lane text default null
) returns table (job_id bigint, created boolean)
language plpgsql as $$
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

-- Inserts that did not come through the gateway: refused in strict mode; in compat mode
-- accepted, completed from the whitelist, and marked (via_gateway = false) so that health,
-- alerts and `contracts check` can count and warn about them.
create function canon.jobs_before_insert() returns trigger
language plpgsql as $$
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
create trigger canon_jobs_gateway_guard before insert on canon.jobs
  for each row execute function canon.jobs_before_insert();

-- ─── the core trigger ───────────────────────────────────────────────────────────────────
-- Always on: each appended event asks, in the same transaction, for a decision about its
-- entity. `job.<type>.required` events are skipped: the decision that wrote them had just
-- read the history they extend, so deciding again would find nothing new.
create function canon.core_on_event() returns trigger
language plpgsql as $$
begin
  if new.kind like 'job.%.required' then
    return null;
  end if;
  perform canon.enqueue_job('decide', new.entity_id, '{}'::jsonb, null, new.position, new.correlation_id);
  return null;
end $$;
create trigger canon_core_trigger after insert on canon.events
  for each row execute function canon.core_on_event();

-- ─── claims ─────────────────────────────────────────────────────────────────────────────
-- One statement: pick queued jobs of one lane (skipping paused types and open breakers),
-- lock them with SKIP LOCKED, mark them running and create the run rows with their trace id
-- `<worker id>-<job id>-<attempt>` (the worker id is `<role>-<uuid>`).
create function canon.claim_jobs(p_lane text, p_worker_id text, p_limit integer default 1)
returns setof canon.jobs
language plpgsql as $$
begin
  if p_lane not in ('decision', 'execution') then
    raise exception using errcode = 'CN005', message = format('unknown lane "%s"', p_lane);
  end if;
  if p_worker_id !~ '^[a-z]+-[0-9a-f-]{36}$' then
    raise exception using errcode = 'CN005',
      message = format('worker id "%s" is not <role>-<uuid>', p_worker_id);
  end if;
  return query
  with candidates as (
    select j.id, t.timeout_seconds
      from canon.jobs j
      join canon.job_types t on t.name = j.type
     where j.lane = p_lane
       and j.status = 'queued'
       and j.run_at <= now()
       and j.hold_reason is null
       and not t.paused
       and not exists (select 1 from canon.breakers b
                        where b.job_type = j.type and b.state = 'open' and b.next_attempt_at > now())
     order by j.priority, j.run_at, j.id
     limit greatest(p_limit, 0)
     for update of j skip locked
  ), claimed as (
    update canon.jobs j
       set status = 'running', attempts = j.attempts + 1, locked_by = p_worker_id, locked_at = now(),
           heartbeat_at = now(), lease_expires_at = now() + make_interval(secs => c.timeout_seconds),
           trace_id = p_worker_id || '-' || j.id || '-' || (j.attempts + 1), updated_at = now()
      from candidates c
     where j.id = c.id
    returning j.*
  ), runs as (
    insert into canon.job_runs (job_id, attempt, lane, type, entity_id, worker_id, trace_id, correlation_id,
                                lease_expires_at)
    select c.id, c.attempts, c.lane, c.type, c.entity_id, p_worker_id, c.trace_id, c.correlation_id,
           c.lease_expires_at
      from claimed c
  )
  select * from claimed;
end $$;

create function canon.claim_initial_decision_jobs(p_worker_id text, p_limit integer default 1)
returns setof canon.jobs language sql as $$ select * from canon.claim_jobs('decision', p_worker_id, p_limit) $$;

create function canon.claim_orchestrator_jobs(p_worker_id text, p_limit integer default 1)
returns setof canon.jobs language sql as $$ select * from canon.claim_jobs('execution', p_worker_id, p_limit) $$;

-- ─── flags ──────────────────────────────────────────────────────────────────────────────
create table canon.flags (
  name            text primary key check (name ~ '^[A-Za-z][A-Za-z0-9_.-]{0,99}$'),
  description     text not null default '',
  enabled         boolean not null default false,
  rollout_percent integer not null default 100 check (rollout_percent between 0 and 100),
  strategy        text not null default 'all' check (strategy in ('all', 'gradual')),
  auto_rollout    jsonb,       -- guarded auto-rollout plan and progress, null when none
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  updated_by      text not null default session_user
);

create table canon.flag_changes (
  id        bigint generated always as identity primary key,
  flag_name text not null references canon.flags (name),
  at        timestamptz not null default clock_timestamp(),
  actor     text not null,
  reason    text,
  source    text not null default 'sql',
  before    jsonb,
  after     jsonb not null
);
create index flag_changes_flag_idx on canon.flag_changes (flag_name, id);

create function canon.flag_state(f canon.flags) returns jsonb
language sql immutable as $$
  select jsonb_build_object('enabled', f.enabled, 'rollout_percent', f.rollout_percent,
                            'strategy', f.strategy, 'auto_rollout', f.auto_rollout)
$$;

-- Every change to a flag, whatever wrote it (canon's CLI, the auto-rollout, or a hand-written
-- UPDATE from the seed guides), becomes a flag_changes row. canon's own writers say who and
-- why through the transaction-local settings canon.actor / canon.reason / canon.source;
-- plain SQL is recorded with the database user as actor.
create function canon.flags_record_change() returns trigger
language plpgsql as $$
declare
  v_before jsonb := case when tg_op = 'UPDATE' then canon.flag_state(old) end;
  v_after jsonb := canon.flag_state(new);
begin
  if v_before is not distinct from v_after then
    return null;
  end if;
  insert into canon.flag_changes (flag_name, actor, reason, source, before, after)
  values (new.name,
          coalesce(nullif(current_setting('canon.actor', true), ''), session_user),
          nullif(current_setting('canon.reason', true), ''),
          coalesce(nullif(current_setting('canon.source', true), ''), 'sql'),
          v_before, v_after);
  return null;
end $$;
create trigger canon_flags_history after insert or update on canon.flags
  for each row execute function canon.flags_record_change();

-- A stable bucket 0..99 per (flag, entity): raising a percentage only ever adds entities.
create function canon.flag_bucket(p_flag text, p_entity_id text) returns integer
language sql immutable parallel safe as $$
  select (('x' || substr(md5(p_flag || ':' || p_entity_id), 1, 8))::bit(32)::bigint % 100)::integer
$$;

create function canon.flag_is_on(p_flag text, p_entity_id text) returns boolean
language sql stable as $$
  select coalesce((select f.enabled and (f.rollout_percent >= 100 or canon.flag_bucket(f.name, p_entity_id) < f.rollout_percent)
                     from canon.flags f where f.name = p_flag), false)
$$;

-- ─── derived status ─────────────────────────────────────────────────────────────────────
create table canon.entity_status (
  entity_id       text primary key references canon.entities (id),
  status          text not null check (status in ('pending', 'in_progress', 'completed', 'failed', 'blocked')),
  health_score    numeric not null default 0,
  jobs_total      integer not null default 0,
  jobs_succeeded  integer not null default 0,
  jobs_failed     integer not null default 0,
  runs_total      integer not null default 0,
  runs_succeeded  integer not null default 0,
  runs_failed     integer not null default 0,
  updated_at      timestamptz not null default now()
);
