-- canon migration | class: core
-- The ledger: settings operators steer, one row per business entity, and the append-only
-- events with their per-entity hash chain. The functions and triggers that write it are in
-- migrations/repeatable/ledger.sql.

create schema if not exists canon;

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
-- event_to_job_gap reads the recent job.<type>.required events by time without touching the
-- rest of the ledger.
create index events_required_created_idx on canon.events (created_at) where kind like 'job.%.required';
-- health's duplicate check groups the last day's events that a run wrote (trace_id set) by
-- entity and kind: this partial index holds only the traced events, with the grouped
-- columns, so the check is an index-only range scan instead of a walk over every event of
-- the day.
create index events_traced_created_idx on canon.events (created_at) include (entity_id, kind) where trace_id is not null;

-- The register of edits to the ledger. A refused UPDATE/DELETE/TRUNCATE raises and rolls
-- back, taking any row it wrote with it. Sequences are the one thing in Postgres that a
-- rollback does not undo, so the register lives in sequences: how many statements were
-- refused, how many edits went through with the triggers bypassed (session_replication_role
-- = replica), and who made the last one, when and how. A loopback connection (dblink) could
-- keep a full table instead, but every connection to canon's embedded server (and to most
-- servers) needs a password, so the database would have to store one; the server log gets
-- the full statement instead. `canon audit attempts` and the alerts read the register.
create sequence canon.ledger_refused_total minvalue 0 start 1;
create sequence canon.ledger_bypass_total minvalue 0 start 1;
create sequence canon.ledger_last_edit_at_us minvalue 0 start 0;  -- microseconds since the epoch
create sequence canon.ledger_last_edit_role minvalue 0 start 0;   -- pg_roles oid of the acting role
create sequence canon.ledger_last_edit_op minvalue 0 start 0;     -- 1 update, 2 delete, 3 truncate; +10 bypassed
create sequence canon.ledger_last_edit_pid minvalue 0 start 0;    -- backend pid, to find it in the server log
