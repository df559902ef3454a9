-- canon migration | class: core
-- The one queue and its gateway's tables: the job-type whitelist, the jobs of both lanes
-- (decision and execution), operator actions on jobs, and the live workers. The gateway
-- (canon.enqueue_job) and the core trigger are in migrations/repeatable/gateway.sql.

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

-- A job's states: queued → running → succeeded | failed | cancelled, and back to queued when
-- a run fails with attempts left or is released. "Dead" is derived (the view canon.dead_jobs),
-- never stored.
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
-- The jobs of one type and entity, newest first: "is this failed job superseded?"
create index jobs_entity_type_idx on canon.jobs (entity_id, type, id);
-- The hold a kill put on queued jobs, released when the kill ends.
create index jobs_hold_idx on canon.jobs (hold_reason) where hold_reason is not null;
-- "succeeded without trace_id after the trace-policy cutoff" must stay an index probe.
create index jobs_succeeded_no_trace_idx on canon.jobs (created_at) where status = 'succeeded' and trace_id is null;
-- dead-jobs filters by correlation and type inside the failed set.
create index jobs_failed_type_idx on canon.jobs (type, finished_at) where status = 'failed';
-- queued work per lane (authority activity, diagnose) without scanning the queue by type.
create index jobs_queued_lane_idx on canon.jobs (lane, run_at) where status = 'queued';

-- Who retried or cancelled which job, when and why. A retry points at the job it created, so
-- `trace` can follow a dead job to its replacement and the dead job stops counting as dead.
create table canon.job_actions (
  id          bigint generated always as identity primary key,
  job_id      bigint not null references canon.jobs (id),
  action      text not null check (action in ('retry', 'cancel')),
  from_status text not null,
  new_job_id  bigint references canon.jobs (id),
  event_position bigint,          -- the job.<type>.required event a retry appended, if any
  actor       text not null,
  reason      text,
  at          timestamptz not null default now(),
  constraint job_actions_retry_has_job check ((action = 'retry') = (new_job_id is not null))
);
-- a dead job is retried at most once; retrying the retry is how to go again
create unique index job_actions_one_retry on canon.job_actions (job_id) where action = 'retry';
create index job_actions_job_idx on canon.job_actions (job_id);
create index job_actions_new_job_idx on canon.job_actions (new_job_id) where new_job_id is not null;

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
