// The deterministic ledger export: one canonical JSON line per event, in global position
// order. The line is built by Postgres: jsonb's text form is canonical (keys ordered by length
// then bytes, fixed separators, numbers exactly as stored), timestamps are written in UTC with
// microseconds and hashes in lowercase hex, so equal ledgers give equal bytes on any machine.
export const EXPORT_SQL = {
  count: `select count(*)::bigint as events, count(distinct entity_id)::bigint as entities from canon.events`,
  declare: `
    declare canon_ledger_export no scroll cursor for
    select jsonb_build_object(
             'position', position, 'entity_id', entity_id, 'seq', seq, 'kind', kind, 'payload', payload,
             'correlation_id', correlation_id, 'causation_id', causation_id, 'trace_id', trace_id, 'actor', actor,
             'created_at', to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             'prev_hash', encode(prev_hash, 'hex'), 'hash', encode(hash, 'hex'))::text as line
      from canon.events
     order by position`,
  fetch: `fetch forward 5000 from canon_ledger_export`,
  close: `close canon_ledger_export`,
} as const;
