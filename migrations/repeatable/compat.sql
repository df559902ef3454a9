-- canon definitions | class: legacy | requires: ledger, runs, steering
-- The seed guides' names, so that their SQL runs as written: views over canon's tables.

-- Views with the seed operations guides' names, in the public schema, so every SQL statement
-- in those guides runs as written from psql. They are plain views over canon's tables: the
-- guide's `UPDATE feature_flags ...` goes through to canon.flags and is recorded in
-- flag_changes by its trigger; `UPDATE/DELETE events` reaches the ledger and is refused.
create or replace view public.document_entities as
select e.id,
       e.created_at,
       e.head_seq,
       encode(e.head_hash, 'hex') as head_hash,
       coalesce((select jsonb_agg(jsonb_build_object(
                   'seq', ev.seq, 'kind', ev.kind, 'payload', ev.payload, 'at', ev.created_at,
                   'correlation_id', ev.correlation_id, 'trace_id', ev.trace_id, 'actor', ev.actor)
                   order by ev.seq)
                 from canon.events ev where ev.entity_id = e.id), '[]'::jsonb) as events
  from canon.entities e;
revoke all on table public.document_entities from public;
grant select on table public.document_entities to canon_reader;

create or replace view public.events as
select position as id, entity_id, seq, kind, payload, correlation_id, causation_id, trace_id, actor,
       created_at, encode(hash, 'hex') as hash
  from canon.events;
revoke all on table public.events from public;
grant select on table public.events to canon_reader;

create or replace view public.executor_jobs as
select id, type, lane, entity_id, status, payload, priority, attempts, max_attempts, run_at, locked_by,
       locked_at, heartbeat_at, dedupe_key, correlation_id, trace_id, source_event_position, via_gateway,
       last_error, last_reason, created_at, updated_at, finished_at
  from canon.jobs;
revoke all on table public.executor_jobs from public;
grant select on table public.executor_jobs to canon_reader;

create or replace view public.executor_job_runs as
select id, job_id, attempt, type, lane, entity_id, worker_id, trace_id, correlation_id, status, reason, error,
       started_at, heartbeat_at, finished_at, result_event_position
  from canon.job_runs;
revoke all on table public.executor_job_runs from public;
grant select on table public.executor_job_runs to canon_reader;

create or replace view public.feature_flags as
select name as flag_name, enabled, updated_at, rollout_percent, strategy, description, created_at
  from canon.flags;
revoke all on table public.feature_flags from public;
grant select on table public.feature_flags to canon_reader;
grant update on table public.feature_flags to canon_operator;

-- The FacturaXpress guide's query runs as written: `SELECT * FROM vault_tampering_attempts
-- ORDER BY created_at DESC LIMIT 10` shows the last recorded attempt and the totals (the
-- register keeps the last one; the server log keeps every statement).
create or replace view public.vault_tampering_attempts as
select r.last_at as created_at, r.last_role as user_id, r.last_op as operation, r.last_bypass as triggers_bypassed,
       r.last_pid as backend_pid, r.refused_total, r.bypass_total, 'canon.events'::text as table_name
  from canon.ledger_edit_register() r
 where r.last_at is not null;
