-- canon migration | class: core
-- Retention of finished work (`canon prune`, docs/decisions/0032-retention-by-settled-entity.md):
-- the record of each prune run, and per pruned entity the tally of what was removed, so that
-- its derived status, `canon status verify`, trace and diagnose answer as before. The ledger
-- is never pruned; the functions are in migrations/repeatable/retention.sql.

-- One row per `canon prune` run (dry runs write nothing). The counters grow in the same
-- transaction as each batch's deletes, so a run that is killed records exactly what it removed.
create table canon.prune_runs (
  id           bigint generated always as identity primary key,
  older_than   interval not null check (older_than > interval '0'),
  horizon      timestamptz not null,  -- jobs finished before this instant were eligible
  batch_size   integer not null check (batch_size >= 1),
  actor        text not null default session_user,
  started_at   timestamptz not null default now(),
  finished_at  timestamptz,
  status       text not null default 'running' check (status in ('running', 'finished', 'failed')),
  error        text,
  batches      integer not null default 0,
  entities     bigint not null default 0,
  jobs         bigint not null default 0,
  runs         bigint not null default 0,
  rejections   bigint not null default 0
);

-- What pruning removed from one entity, added up over every prune: the counters the status
-- rules read (canon.entity_status_compute adds them to the live jobs' and runs'), the types
-- of the dead jobs removed (dead until a later job of the same type supersedes them), and the
-- newest event position whose decisions and jobs were removed (the events up to it were all
-- covered when they were pruned: the gap rule does not ask for their jobs again).
create table canon.entity_pruned (
  entity_id         text primary key references canon.entities (id),
  jobs_succeeded    integer not null default 0,
  jobs_failed       integer not null default 0,
  jobs_cancelled    integer not null default 0,
  runs_succeeded    integer not null default 0,
  runs_failed       integer not null default 0,
  runs_cancelled    integer not null default 0,
  dead_types        text[] not null default '{}',
  covered_position  bigint not null,
  first_pruned_at   timestamptz not null default now(),
  last_pruned_at    timestamptz not null default now(),
  last_prune_run    bigint references canon.prune_runs (id)
);

-- Deleting a run checks its rejections by run id (the foreign key); without an index that is
-- a scan of every rejection per run.
create index run_rejections_run_idx on canon.run_rejections (run_id);
