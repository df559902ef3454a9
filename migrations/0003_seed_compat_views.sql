-- canon migration | class: legacy | breaking: no
-- Views with the seed operations guides' names, in the public schema, so every SQL statement
-- in those guides runs as written from psql. They are plain views over canon's tables: the
-- guide's `UPDATE feature_flags ...` goes through to canon.flags and is recorded in
-- flag_changes by its trigger; `UPDATE/DELETE events` reaches the ledger and is refused.

create view public.document_entities as
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

create view public.events as
select position as id, entity_id, seq, kind, payload, correlation_id, causation_id, trace_id, actor,
       created_at, encode(hash, 'hex') as hash
  from canon.events;

create view public.executor_jobs as
select id, type, lane, entity_id, status, payload, priority, attempts, max_attempts, run_at, locked_by,
       locked_at, heartbeat_at, dedupe_key, correlation_id, trace_id, source_event_position, via_gateway,
       last_error, last_reason, created_at, updated_at, finished_at
  from canon.jobs;

create view public.executor_job_runs as
select id, job_id, attempt, type, lane, entity_id, worker_id, trace_id, correlation_id, status, reason, error,
       started_at, heartbeat_at, finished_at, result_event_position
  from canon.job_runs;

create view public.feature_flags as
select name as flag_name, enabled, updated_at, rollout_percent, strategy, description, created_at
  from canon.flags;
