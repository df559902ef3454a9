-- canon migration | class: infra | breaking: no
-- Read paths at the seed's dataset size (10M events; docs/PERFORMANCE.md has the plans).
-- health's duplicate check groups the last day's events that a run wrote (trace_id set) by
-- entity and kind: on the created_at index it visited every event of the day and dropped the
-- client appends one by one (415 ms at 10M events); this partial index holds only the traced
-- events, with the grouped columns, so the check is an index-only range scan (25 ms).
create index events_traced_created_idx on canon.events (created_at) include (entity_id, kind) where trace_id is not null;
