-- canon migration | class: core
-- status_derived: one row per entity, kept current at the commit of every transaction that
-- changes the entity's jobs or runs (migrations/repeatable/status.sql has the rules and the
-- triggers), so that reading it is a primary-key lookup.

-- No foreign key to entities: it would make every status update take a KEY SHARE lock on the
-- entity row, which a concurrent append holds FOR UPDATE until it commits, a lock cycle with
-- that append's own status update. Entities are never deleted (the ledger is append-only)
-- and `canon status verify` reports a status row without an entity.
create table canon.entity_status (
  entity_id       text primary key,
  status          text not null check (status in ('pending', 'in_progress', 'completed', 'failed', 'blocked')),
  health_score    numeric not null default 0,
  jobs_total      integer not null default 0,
  jobs_succeeded  integer not null default 0,
  jobs_failed     integer not null default 0,
  runs_total      integer not null default 0,
  runs_succeeded  integer not null default 0,
  runs_failed     integer not null default 0,
  updated_at      timestamptz not null default now(),
  jobs_queued     integer not null default 0,
  jobs_running    integer not null default 0,
  jobs_blocked    integer not null default 0,
  jobs_cancelled  integer not null default 0,
  jobs_dead       integer not null default 0,
  runs_running    integer not null default 0,
  runs_cancelled  integer not null default 0
);

-- The entities a transaction touched, noted by statement-level triggers and refreshed at
-- commit (docs/decisions/ explains why at commit). Unlogged, and each transaction deletes its
-- own rows, so it stays empty.
create unlogged table canon.status_dirty (
  xid       xid8 not null default pg_current_xact_id(),
  entity_id text not null,
  primary key (xid, entity_id)
);

-- One row per transaction that has dirty entities: the deferred trigger that flushes them
-- sits on this marker, so it fires once per transaction rather than once per entity.
create unlogged table canon.status_flush_due (
  xid xid8 primary key default pg_current_xact_id()
);
