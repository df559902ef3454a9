// The deterministic ledger export: one canonical JSON line per event, in global position
// order. The line is built by Postgres: jsonb's text form is canonical (keys ordered by length
// then bytes, fixed separators, numbers exactly as stored), timestamps are written in UTC with
// microseconds and hashes in lowercase hex, so equal ledgers give equal bytes on any machine.
/** One event (alias e) as its canonical line; also the lines of an archived month (src/sql/archive.ts). */
export const EXPORT_LINE = `jsonb_build_object(
             'position', e.position, 'entity_id', e.entity_id, 'seq', e.seq, 'kind', e.kind, 'payload', e.payload,
             'correlation_id', e.correlation_id, 'causation_id', e.causation_id, 'trace_id', e.trace_id, 'actor', e.actor,
             'created_at', to_char(e.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             'prev_hash', encode(e.prev_hash, 'hex'), 'hash', encode(e.hash, 'hex'))::text`;

export const EXPORT_SQL = {
  // ── inside the caller's transaction (restore checks what it loaded before it commits) ──
  count: `select count(*)::bigint as events, count(distinct entity_id)::bigint as entities from canon.events`,
  declare: `declare canon_ledger_export no scroll cursor for select ${EXPORT_LINE} as line from canon.events e order by e.position`,
  fetch: `fetch forward 5000 from canon_ledger_export`,
  close: `close canon_ledger_export`,

  // ── up to a safe cut, in short statements (src/proof/cut.ts, decision 0031) ──
  // The newest committed position, and the transactions that may still commit a lower one:
  // every insert into canon.events holds ROW EXCLUSIVE on it from before its position is drawn
  // until it ends. The locks are read after the statement's snapshot, so a writer that drew a
  // position below the one returned is either among them or already over.
  cut: `
    select coalesce((select max(e.position) from canon.events e), 0)::bigint as position,
           array(select l.virtualtransaction from pg_locks l
                  where l.locktype = 'relation' and l.relation = 'canon.events'::regclass
                    and l.mode = 'RowExclusiveLock' and l.pid <> pg_backend_pid()) as writers`,
  // which of those writers' transactions are still open (each holds the lock on its own virtual xid)
  writersOpen: `select l.pid from pg_locks l where l.locktype = 'virtualxid' and l.virtualxid = any ($1::text[])`,
  firstPosition: `select coalesce(min(e.position), 0)::bigint as position from canon.events e`,
  // $1 after this position, $2 through the cut, $3 at most this many; with the row as backup stores it
  chunk: `select e.position, e.seq, ${EXPORT_LINE} as line from canon.events e
           where e.position > $1::bigint and e.position <= $2::bigint order by e.position limit $3`,
  chunkWithRows: `select e.position, e.seq, ${EXPORT_LINE} as line, to_jsonb(e)::text as row from canon.events e
                   where e.position > $1::bigint and e.position <= $2::bigint order by e.position limit $3`,
  // the events past the cut that the backup's snapshot sees (appended while the cut was taken)
  tail: `select e.position, e.seq, ${EXPORT_LINE} as line, to_jsonb(e)::text as row from canon.events e
          where e.position > $1::bigint order by e.position`,
} as const;
