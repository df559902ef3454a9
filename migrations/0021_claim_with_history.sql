-- canon migration | class: core | breaking: no
-- An execution worker reads the histories of the entities it claimed before their handlers
-- start; that was a second round trip after every claim. canon.claim_runs_with_history is
-- canon.claim_runs (same claim, same asynchronous commit, same answer) with each job's entity
-- history as a JSON array in seq order, the columns of canon.events a handler sees. The
-- history is read right after the claim, in the claim's transaction; the decider still reads
-- its history itself, under the entity's lock. One round trip per batch instead of two is
-- about a sixth of a no-op batch's cycle.
create function canon.claim_runs_with_history(p_lane text, p_worker_id text, p_limit integer default 1)
returns table (run_id bigint, id bigint, lane text, type text, entity_id text, payload jsonb, attempts integer,
               max_attempts integer, correlation_id text, trace_id text, source_event_position bigint, events jsonb)
language plpgsql
set search_path = pg_catalog, canon, pg_temp
set plan_cache_mode = force_custom_plan as $$
begin
  return query
  select c.run_id, c.id, c.lane, c.type, c.entity_id, c.payload, c.attempts, c.max_attempts, c.correlation_id,
         c.trace_id, c.source_event_position,
         coalesce((select jsonb_agg(jsonb_build_object(
                             'position', e.position, 'entity_id', e.entity_id, 'seq', e.seq, 'kind', e.kind,
                             'payload', e.payload, 'correlation_id', e.correlation_id, 'causation_id', e.causation_id,
                             'trace_id', e.trace_id, 'actor', e.actor, 'created_at', e.created_at) order by e.seq)
                     from canon.events e where e.entity_id = c.entity_id), '[]'::jsonb)
    from canon.claim_runs(p_lane, p_worker_id, p_limit) c;
end $$;
