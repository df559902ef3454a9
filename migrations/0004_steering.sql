-- canon migration | class: core
-- Steering: circuit breakers per job type, flags with their change history and guarded
-- rollouts, and the log of every other steering action. Every change goes through the
-- functions in migrations/repeatable/steering.sql, so the CLI, the tick and a psql session
-- change state the same way and leave the same record.

create table canon.breakers (
  job_type        text primary key references canon.job_types (name),
  state           text not null default 'closed' check (state in ('closed', 'open', 'half_open')),
  failure_count   integer not null default 0,
  opened_at       timestamptz,
  next_attempt_at timestamptz,
  probe_job_id    bigint,
  updated_at      timestamptz not null default now(),
  updated_by      text,
  reason          text    -- why it is in its current state
);

create table canon.flags (
  name            text primary key check (name ~ '^[A-Za-z][A-Za-z0-9_.-]{0,99}$'),
  description     text not null default '',
  enabled         boolean not null default false,
  rollout_percent integer not null default 100 check (rollout_percent between 0 and 100),
  strategy        text not null default 'all' check (strategy in ('all', 'gradual')),
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  updated_by      text not null default session_user,
  -- A kill is part of a flag's state: it holds queued jobs, and turning the flag back on
  -- (enable, rollout, rollback, or a plain UPDATE) ends it and releases them.
  killed_at       timestamptz,
  killed_by       text
);

create table canon.flag_changes (
  id        bigint generated always as identity primary key,
  flag_name text not null references canon.flags (name),
  at        timestamptz not null default clock_timestamp(),
  actor     text not null,
  reason    text,
  source    text not null default 'sql',
  before    jsonb,
  after     jsonb not null,
  -- A rollback row names the change it undid; each change is undone at most once, which
  -- also makes two concurrent rollbacks of the same change impossible.
  undoes    bigint references canon.flag_changes (id)
);
create index flag_changes_flag_idx on canon.flag_changes (flag_name, id);
create unique index flag_changes_undoes_key on canon.flag_changes (undoes) where undoes is not null;
-- `canon alerts` asks for the automatic rollbacks of the last day.
create index flag_changes_auto_rollback_idx on canon.flag_changes (at) where source = 'auto-rollback';

create table canon.flag_rollouts (
  id                bigint generated always as identity primary key,
  flag_name         text not null references canon.flags (name),
  status            text not null default 'running'
                    check (status in ('running', 'completed', 'stopped', 'rolled_back', 'killed')),
  step_percent      integer not null check (step_percent between 1 and 100),
  every_seconds     numeric not null check (every_seconds >= 1),
  until_percent     integer not null check (until_percent between 1 and 100),
  guard             text,                          -- as the operator wrote it
  conditions        jsonb not null default '[]',   -- the parsed guard: [{metric, op, value}]
  start_state       jsonb not null,                -- the flag before the rollout (restored if the first step fails)
  current_percent   integer not null check (current_percent between 0 and 100),
  last_good_percent integer,                       -- null until a step passed its guard
  step_started_at   timestamptz not null,
  next_step_at      timestamptz not null,
  steps_passed      integer not null default 0,
  last_verdict      jsonb,                         -- metrics and verdict of the last evaluation
  started_by        text not null,
  started_at        timestamptz not null default now(),
  reason            text,
  ended_by          text,
  ended_at          timestamptz,
  end_reason        text,
  constraint flag_rollouts_ended check ((status = 'running') = (ended_at is null))
);
create unique index flag_rollouts_one_running on canon.flag_rollouts (flag_name) where status = 'running';
-- the tick's question, "which rollouts are due", is an index range scan
create index flag_rollouts_due_idx on canon.flag_rollouts (next_step_at) where status = 'running';

-- Who did what to a breaker, a job type or a flag (other than its state, which flag_changes
-- keeps): pausing, resuming, breaker transitions (also the automatic ones), releasing held
-- jobs, stopping a rollout. Rare writes, read by history views, health and alerts.
create table canon.steering_log (
  id          bigint generated always as identity primary key,
  at          timestamptz not null default clock_timestamp(),
  target_kind text not null check (target_kind in ('breaker', 'job_type', 'flag')),
  target      text not null,
  action      text not null,
  actor       text not null,
  reason      text,
  detail      jsonb not null default '{}'::jsonb
);
create index steering_log_target_idx on canon.steering_log (target_kind, target, id);
create index steering_log_at_idx on canon.steering_log (at);
