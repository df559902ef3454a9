-- canon migration | class: infra | breaking: no
-- What `canon health`, `dead-jobs`, `trace`, `diagnose`, `alerts` and `serve` need: the record
-- of operator actions on jobs (retry, cancel), the derived dead-job view, and partial indexes
-- so that each of their numbers is answered from an index, not a scan of the ledger.

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

-- Dead is derived, never stored: a job that ended in status failed (attempts exhausted,
-- permanent failure, or TTL rescue with no attempts left) and that nobody has retried yet.
create view canon.dead_jobs as
select j.*
  from canon.jobs j
 where j.status = 'failed'
   and not exists (select 1 from canon.job_actions a where a.job_id = j.id and a.action = 'retry');

-- event_to_job_gap reads the recent job.<type>.required events by time without touching the
-- rest of the ledger.
create index events_required_created_idx on canon.events (created_at) where kind like 'job.%.required';
-- "succeeded without trace_id after the trace-policy cutoff" must stay an index probe.
create index jobs_succeeded_no_trace_idx on canon.jobs (created_at) where status = 'succeeded' and trace_id is null;
-- dead-jobs filters by correlation and type inside the failed set.
create index jobs_failed_type_idx on canon.jobs (type, finished_at) where status = 'failed';
-- queued work per lane (authority activity, diagnose) without scanning the queue by type.
create index jobs_queued_lane_idx on canon.jobs (lane, run_at) where status = 'queued';
-- runs per job in attempt order (trace), and decision runs by start time (authority activity).
create index job_runs_lane_started_idx on canon.job_runs (lane, started_at);
