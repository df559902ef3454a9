-- canon migration | class: infra
-- Least privilege. Four kinds of database user:
--   owner           runs `canon migrate` and owns every object (whoever applies this file)
--   canon_worker    `canon work`, `canon tick`, `events append`: claims, heartbeats, completes,
--                   fails and appends only through canon's functions; reads what handlers read
--   canon_operator  flags, breakers, pause/resume, jobs retry/cancel, gateway mode
--   canon_reader    health, dashboards, trace, audit verify, export, backup: read-only
-- Nobody but the owner can write the ledger (events, entities) or insert a job: those writes
-- happen inside SECURITY DEFINER functions, which run as the owner, pin their search_path
-- (pg_temp last, so a caller's temporary objects cannot shadow canon's) and are executable
-- only by the roles their definitions name (migrations/repeatable/), never by PUBLIC.
-- `canon contracts check` verifies both.
-- Log in as a member of a role: `create user app_worker login password '...' in role canon_worker`.

-- Roles are cluster-wide: every database on the server runs this file. Created only when
-- missing; two databases migrating at the same moment race on the catalog's unique index,
-- and the loser finds the role made by the winner.
do $$
declare
  r text;
begin
  foreach r in array array['canon_reader', 'canon_worker', 'canon_operator'] loop
    if not exists (select from pg_roles where rolname = r) then
      begin
        execute format('create role %I nologin', r);
      exception when duplicate_object or unique_violation then
        null;
      end;
    end if;
  end loop;
  -- workers and operators read what readers read
  foreach r in array array['canon_worker', 'canon_operator'] loop
    if not pg_has_role(r, 'canon_reader', 'member') then
      begin
        execute format('grant canon_reader to %I', r);
      exception when duplicate_object or unique_violation then
        null;
      end;
    end if;
  end loop;
end $$;

-- Reading: every table, view and sequence of the schema, also those of later migrations
-- (objects created by the owner). Backup reads the ledger register's sequences.
grant usage on schema canon to canon_reader;
grant select on all tables in schema canon to canon_reader;
grant select on all sequences in schema canon to canon_reader;
alter default privileges in schema canon grant select on tables to canon_reader;
alter default privileges in schema canon grant select on sequences to canon_reader;

-- The worker's own rows: announcing itself and heartbeating (canon.workers), recording the
-- refusal of a decision it no longer owns, noting what a decision saw (job_runs.detail and
-- nothing else of the run), and syncing its pipeline's declarations: job types (the tuning
-- columns; lane and pause stay with the owner and operators) and flags that do not exist yet
-- (ON CONFLICT DO NOTHING: an existing flag belongs to operators).
grant insert, update on canon.workers to canon_worker;
grant insert on canon.run_rejections to canon_worker;
grant update (detail) on canon.job_runs to canon_worker;
grant insert on canon.job_types to canon_worker;
grant update (max_attempts, timeout_seconds, backoff_base_seconds, backoff_max_seconds, breaker_threshold,
              breaker_cooldown_seconds, declared_by, updated_at) on canon.job_types to canon_worker;
grant insert on canon.flags to canon_worker;

-- The operator's steering: `jobs cancel` ends a job and its running run (the columns it
-- sets); `jobs retry` records itself in job_actions (the new job comes through the gateway);
-- `gateway mode` and `audit attempts --ack` write settings. The seed guides' `UPDATE
-- feature_flags` goes through the compat view (migrations/repeatable/compat.sql).
grant update (status, finished_at, locked_by, last_error, updated_at, hold_reason) on canon.jobs to canon_operator;
grant update (status, finished_at, reason, error) on canon.job_runs to canon_operator;
grant insert on canon.job_actions to canon_operator;
grant insert, update (value, updated_at, updated_by) on canon.settings to canon_operator;
