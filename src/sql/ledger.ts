// Ledger queries: appending (always through canon.append_event, which lets the insert
// trigger assign seq and hash) and reading an entity's history.
export const LEDGER_SQL = {
  append: `select position, entity_id, seq, kind, payload, correlation_id, causation_id, trace_id, actor,
                  created_at, encode(hash, 'hex') as hash
             from canon.append_event($1, $2, $3::jsonb, $4, $5, $6, $7, $8)`,
  history: `select position, entity_id, seq, kind, payload, correlation_id, causation_id, trace_id, actor, created_at
              from canon.events where entity_id = $1 order by seq`,
} as const;
