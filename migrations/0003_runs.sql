-- canon migration | class: core
-- Runs: one row per attempt at a job, the refusals of workers that lost their claim, and the
-- guard that keeps run ids unique across a crash. The claim, the heartbeat and the
-- completions are in migrations/repeatable/runs.sql.

-- A run's states: running → succeeded | failed | cancelled (released or cancelled runs end as
-- cancelled with their reason).
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
  -- what a decision saw and chose (flag values used, jobs required or skipped, done), so
  -- that `canon trace` can show why the pipeline went where it went
  detail                jsonb,
  unique (job_id, attempt),
  constraint runs_finished_has_time check ((status = 'running') = (finished_at is null))
);
create index job_runs_started_idx on canon.job_runs (started_at);
create index job_runs_finished_idx on canon.job_runs (finished_at) where finished_at is not null;
create index job_runs_running_idx on canon.job_runs (heartbeat_at) where status = 'running';
create index job_runs_worker_idx on canon.job_runs (worker_id);
-- runs are counted per entity for its status
create index job_runs_entity_idx on canon.job_runs (entity_id);
-- runs per job in attempt order (trace), and decision runs by start time (authority activity)
create index job_runs_lane_started_idx on canon.job_runs (lane, started_at);
-- The newest failed runs (`canon watch`'s recent failures): on job_runs_finished_idx that
-- walk would step over every recent success first, so failed runs get a partial index of
-- their own, as small as the failures themselves.
create index job_runs_failed_finished_idx on canon.job_runs (finished_at) where status = 'failed';

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

-- One row that crash recovery removes (it empties every unlogged table; a clean shutdown
-- keeps them). The first insert of runs in a session that finds it gone moves the run id
-- sequence past any id a lost claim may have handed out (canon.job_runs_past_restart;
-- docs/decisions/ explains why claims may then commit without waiting for the disk).
create unlogged table canon.run_id_guard (
  only_row boolean primary key default true check (only_row)
);
insert into canon.run_id_guard default values;
