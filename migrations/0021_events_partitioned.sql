-- canon migration | class: core
-- canon.events partitioned by month of created_at, so that a past month can be archived
-- (exported with its digest, detached, kept as a file) and restored: decision 0034. Every
-- unique key of a partitioned table must hold the partition key, so the key becomes
-- (entity_id, seq, created_at) and position's unique index (position, created_at); the chain
-- trigger, under the entity's row lock, is what makes (entity_id, seq) unique, as it always
-- made seq gap-free. A default partition catches a row of a month without its own partition
-- (canon.ensure_event_partitions, in the definitions, creates months ahead).
--
-- The rows move to the new table as they are (no trigger fires: the definitions create the
-- triggers afterwards). The old table goes with everything that depended on it (its triggers,
-- the compat views, append_event, which returns its row type), and the definitions
-- bookkeeping is cleared, so the migrator applies every definitions file again right after
-- this migration and re-creates them on the new table.

alter table canon.events rename to events_unpartitioned;
alter index canon.events_pkey rename to events_unpartitioned_pkey;
alter index canon.events_position_key rename to events_unpartitioned_position_key;
alter index canon.events_created_at_idx rename to events_unpartitioned_created_at_idx;
alter index canon.events_correlation_idx rename to events_unpartitioned_correlation_idx;
alter index canon.events_kind_idx rename to events_unpartitioned_kind_idx;
alter index canon.events_required_created_idx rename to events_unpartitioned_required_created_idx;
alter index canon.events_traced_created_idx rename to events_unpartitioned_traced_created_idx;
alter table canon.events_unpartitioned rename constraint events_entity_id_fkey to events_unpartitioned_entity_id_fkey;
alter sequence canon.events_position_seq rename to events_unpartitioned_position_seq;

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
  -- routing needs the month before the chain trigger runs: the default gives it, and the
  -- trigger keeps the clock time only within the same month (migrations/repeatable/ledger.sql)
  created_at     timestamptz not null default clock_timestamp(),
  prev_hash      bytea,
  hash           bytea not null,
  primary key (entity_id, seq, created_at)
) partition by range (created_at);
create unique index events_position_key on canon.events (position, created_at);
create index events_created_at_idx on canon.events (created_at);
create index events_correlation_idx on canon.events (correlation_id);
create index events_kind_idx on canon.events (kind, created_at);
create index events_required_created_idx on canon.events (created_at) where kind like 'job.%.required';
create index events_traced_created_idx on canon.events (created_at) include (entity_id, kind) where trace_id is not null;

create table canon.events_default partition of canon.events default;

-- One partition per month (UTC) that holds events, and the current month and the next two.
-- canon.ensure_event_partitions makes the later ones; this block runs before it exists.
do $$
declare
  m timestamptz;
  last_month timestamptz := date_trunc('month', now() at time zone 'UTC') at time zone 'UTC' + interval '2 months';
begin
  select date_trunc('month', min(created_at) at time zone 'UTC') at time zone 'UTC' into m from canon.events_unpartitioned;
  m := least(coalesce(m, last_month), date_trunc('month', now() at time zone 'UTC') at time zone 'UTC');
  while m <= last_month loop
    execute format('create table canon.%I partition of canon.events for values from (%L) to (%L)',
                   'events_' || to_char(m at time zone 'UTC', 'YYYY_MM'), m, m + interval '1 month');
    m := m + interval '1 month';
  end loop;
end $$;

insert into canon.events overriding system value select * from canon.events_unpartitioned;
select setval(pg_get_serial_sequence('canon.events', 'position'),
              coalesce((select max(position) from canon.events_unpartitioned), 0) + 1, false);

drop table canon.events_unpartitioned cascade;

-- The archives: one row per month archived (its file's digest, the cut's position range and
-- counts), and each entity's head at the cut, from which `canon audit verify` checks what is
-- kept. A restored month keeps its row (restored_at set).
create table canon.ledger_archives (
  month          date primary key check (extract(day from month) = 1),
  partition_name text not null,
  file_name      text not null,
  sha256         text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  heads_sha256   text not null check (heads_sha256 ~ '^[0-9a-f]{64}$'),
  events         bigint not null,
  entities       bigint not null,
  first_position bigint,
  last_position  bigint,
  archived_at    timestamptz not null default now(),
  archived_by    text not null default session_user,
  restored_at    timestamptz,
  restored_by    text
);

create table canon.archived_heads (
  month      date not null references canon.ledger_archives (month),
  entity_id  text not null,
  first_seq  integer not null,
  last_seq   integer not null,
  -- the hash of the entity's last event in the month: its next kept event links to it
  last_hash  bytea not null,
  primary key (month, entity_id)
);
-- audit verify finds the archived head a kept event links to by (entity, seq)
create index archived_heads_entity_idx on canon.archived_heads (entity_id, last_seq);

grant select on canon.events, canon.events_default, canon.ledger_archives, canon.archived_heads to canon_reader;

-- every definitions file is applied again after this migration (see the top)
delete from canon.schema_definitions;
