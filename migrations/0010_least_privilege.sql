-- canon migration | class: infra | breaking: no
-- Least privilege. Four kinds of database user:
--   owner           runs `canon migrate` and owns every object (whoever applies this file)
--   canon_worker    `canon work`, `canon tick`, `events append`: claims, heartbeats, completes,
--                   fails and appends only through canon's functions; reads what handlers read
--   canon_operator  flags, breakers, pause/resume, jobs retry/cancel, gateway mode
--   canon_reader    health, dashboards, trace, audit verify, export, backup: read-only
-- Nobody but the owner can write the ledger (events, entities) or insert a job: those writes
-- happen inside SECURITY DEFINER functions, which run as the owner, pin their search_path
-- (pg_temp last, so a caller's temporary objects cannot shadow canon's) and are executable
-- only by the roles named below, never by PUBLIC. `canon contracts check` verifies both.
-- Log in as a member of a role: `create user app_worker login password '...' in role canon_worker`.

-- ─── roles (cluster-wide: every database on the server runs this file) ────────────────
-- Created only when missing; two databases migrating at the same moment race on the
-- catalog's unique index, and the loser finds the role made by the winner.
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

-- ─── reading ────────────────────────────────────────────────────────────────────────────
grant usage on schema canon to canon_reader;
grant select on all tables in schema canon to canon_reader;
grant select on all sequences in schema canon to canon_reader;   -- backup reads the ledger register
-- tables and sequences of later migrations are readable too (objects created by the owner)
alter default privileges in schema canon grant select on tables to canon_reader;
alter default privileges in schema canon grant select on sequences to canon_reader;
grant select on public.document_entities, public.events, public.executor_jobs, public.executor_job_runs,
                public.feature_flags to canon_reader;

-- ─── the functions that write: SECURITY DEFINER, pinned search_path ─────────────────────
-- The decider serialises decisions about one entity on the entity's row. SELECT ... FOR
-- UPDATE needs UPDATE privilege on the table, which no role but the owner has on the
-- ledger, so the lock is taken here.
create function canon.lock_entity(p_entity_id text) returns integer
language sql as $$
  select head_seq from canon.entities where id = p_entity_id for update
$$;

do $$
declare
  f regprocedure;
begin
  for f in
    select p.oid::regprocedure from pg_proc p
     where p.pronamespace = 'canon'::regnamespace
       and p.proname = any (array[
         -- the worker's API
         'append_event', 'enqueue_job', 'claim_jobs', 'claim_initial_decision_jobs', 'claim_orchestrator_jobs',
         'heartbeat_runs', 'lock_run', 'lock_entity', 'complete_run', 'fail_run', 'release_run', 'rescue_stuck',
         'advance_rollouts',
         -- the operator's API
         'flag_create', 'flag_change', 'flag_rollback', 'flag_release', 'rollout_start', 'rollout_stop',
         'breaker_force', 'job_type_pause', 'refresh_entity_status',
         -- triggers that write tables the role that fired them cannot: an operator's cancel
         -- (status, breaker accounting) and a worker declaring its pipeline's flags (history)
         'status_on_jobs_update', 'status_on_runs_update', 'breaker_on_run_end', 'flags_record_change',
         -- already definer (0004): re-pinned with pg_temp last
         'ledger_edit_attempt', 'ledger_edit_register'])
  loop
    execute format('alter function %s security definer set search_path = pg_catalog, canon, pg_temp', f);
    execute format('revoke execute on function %s from public', f);
  end loop;
end $$;

grant execute on function
  canon.append_event(text, text, jsonb, integer, text, bigint, text, text),
  canon.enqueue_job(text, text, jsonb, text, bigint, text, timestamptz, integer, text)
  to canon_worker, canon_operator;

grant execute on function
  canon.claim_jobs(text, text, integer),
  canon.claim_initial_decision_jobs(text, integer),
  canon.claim_orchestrator_jobs(text, integer),
  canon.heartbeat_runs(text, bigint[]),
  canon.lock_run(bigint, text),
  canon.lock_entity(text),
  canon.complete_run(bigint, text, jsonb, text),
  canon.fail_run(bigint, text, text, boolean, text),
  canon.release_run(bigint, text, text),
  canon.rescue_stuck(integer),
  canon.advance_rollouts()
  to canon_worker;

grant execute on function
  canon.flag_create(text, text, text, text),
  canon.flag_change(text, text, integer, text, text),
  canon.flag_rollback(text, text, text),
  canon.flag_release(text, text, text),
  canon.rollout_start(text, integer, integer, numeric, integer, text, jsonb, text, text),
  canon.rollout_stop(text, text, text),
  canon.breaker_force(text, text, numeric, text, text),
  canon.job_type_pause(text, boolean, text, text),
  canon.refresh_entity_status(text[])
  to canon_operator;

grant execute on function canon.ledger_edit_register() to canon_reader;

-- ─── the worker's own rows ──────────────────────────────────────────────────────────────
-- Announcing itself and heartbeating (canon.workers), recording the refusal of a decision it
-- no longer owns, noting what a decision saw (job_runs.detail and nothing else of the run),
-- and syncing its pipeline's declarations: job types (the tuning columns; lane and pause
-- stay with the owner and operators) and flags that do not exist yet (ON CONFLICT DO NOTHING:
-- an existing flag belongs to operators).
grant insert, update on canon.workers to canon_worker;
grant insert on canon.run_rejections to canon_worker;
grant update (detail) on canon.job_runs to canon_worker;
grant insert on canon.job_types to canon_worker;
grant update (max_attempts, timeout_seconds, backoff_base_seconds, backoff_max_seconds, breaker_threshold,
              breaker_cooldown_seconds, declared_by, updated_at) on canon.job_types to canon_worker;
grant insert on canon.flags to canon_worker;

-- ─── the operator's steering ────────────────────────────────────────────────────────────
-- `jobs cancel` ends a job and its running run (the columns it sets); `jobs retry` records
-- itself in job_actions (the new job comes through the gateway); `gateway mode` and
-- `audit attempts --ack` write settings; the seed guides' `UPDATE feature_flags` goes
-- through the compat view (the history trigger records it).
grant update (status, finished_at, locked_by, last_error, updated_at, hold_reason) on canon.jobs to canon_operator;
grant update (status, finished_at, reason, error) on canon.job_runs to canon_operator;
grant insert on canon.job_actions to canon_operator;
grant insert, update (value, updated_at, updated_by) on canon.settings to canon_operator;
grant update on public.feature_flags to canon_operator;
