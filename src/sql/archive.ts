// Archiving a month of the ledger (canon archive) and restoring it (canon archive restore).
// canon.events is partitioned by month of created_at (migrations/0021_events_partitioned.sql):
// a month's partition is canon.events_YYYY_MM. Statements that name a partition take its name
// from partitionName(), built from a validated month only.
import { EXPORT_LINE } from './export.js';

/** `canon.events_2026_11` for 2026-11: the only way a partition's name reaches SQL. */
export const partitionName = (month: { year: number; month: number }) =>
  `canon.events_${month.year}_${String(month.month).padStart(2, '0')}`;

/** The month's bounds in UTC, as literals for ATTACH PARTITION. */
export function monthBounds(month: { year: number; month: number }): { from: string; to: string } {
  const next = month.month === 12 ? { year: month.year + 1, month: 1 } : { year: month.year, month: month.month + 1 };
  const at = (m: { year: number; month: number }) => `${m.year}-${String(m.month).padStart(2, '0')}-01 00:00:00+00`;
  return { from: at(month), to: at(next) };
}

export const ARCHIVE_SQL = {
  /** whether `$1` (events_YYYY_MM) is attached to canon.events now */
  attached: `select exists (select 1 from pg_inherits i join pg_class c on c.oid = i.inhrelid
                             where i.inhparent = 'canon.events'::regclass
                               and c.relnamespace = 'canon'::regnamespace and c.relname = $1) as attached`,
  record: `select month::text, partition_name, file_name, sha256, heads_sha256, events, entities, first_position, last_position,
                  archived_at, archived_by, restored_at, restored_by
             from canon.ledger_archives where month = $1::date`,
  byDigest: `select month::text, partition_name, sha256, heads_sha256, events, entities
               from canon.ledger_archives where sha256 = $1 and restored_at is null`,
  list: `select month::text, file_name, sha256, events, entities, archived_at, restored_at
           from canon.ledger_archives order by month`,
  /** entities of the month that still have work queued or running: their history must stay whole */
  busy: (p: string) => `
    select count(*)::int as n, min(e.entity_id) as example
      from (select distinct entity_id from ${p}) e
     where exists (select 1 from canon.jobs j where j.entity_id = e.entity_id and j.status in ('queued', 'running'))`,
  /** each entity's part of the month: the cut's heads */
  heads: (p: string) => `
    select entity_id, min(seq)::int as first_seq, max(seq)::int as last_seq,
           encode((array_agg(hash order by seq desc))[1], 'hex') as last_hash
      from ${p} group by entity_id order by entity_id`,
  counts: (p: string) => `
    select count(*)::bigint as events, count(distinct entity_id)::bigint as entities,
           min(position) as first_position, max(position) as last_position
      from ${p}`,
  declareLines: (p: string) => `declare canon_archive_lines no scroll cursor for
    select ${EXPORT_LINE} as line from ${p} e order by e.position`,
  fetchLines: `fetch forward 5000 from canon_archive_lines`,
  closeLines: `close canon_archive_lines`,
  /** stops appends routed to the month (a late COPY, a restore) between the export and the detach */
  lockPartition: (p: string) => `lock table ${p} in share mode`,
  saveRecord: `
    insert into canon.ledger_archives (month, partition_name, file_name, sha256, heads_sha256, events, entities,
                                       first_position, last_position)
    values ($1::date, $2, $3, $4, $5, $6, $7, $8, $9)
    on conflict (month) do update
       set partition_name = excluded.partition_name, file_name = excluded.file_name, sha256 = excluded.sha256,
           heads_sha256 = excluded.heads_sha256, events = excluded.events, entities = excluded.entities,
           first_position = excluded.first_position, last_position = excluded.last_position,
           archived_at = now(), archived_by = session_user, restored_at = null, restored_by = null`,
  clearHeads: `delete from canon.archived_heads where month = $1::date`,
  saveHeads: (p: string) => `
    insert into canon.archived_heads (month, entity_id, first_seq, last_seq, last_hash)
    select $1::date, entity_id, min(seq), max(seq), (array_agg(hash order by seq desc))[1]
      from ${p} group by entity_id`,
  lockTimeout: `set local lock_timeout = '10s'`,
  detach: (p: string) => `alter table canon.events detach partition ${p}`,
  drop: (p: string) => `drop table ${p}`,
  /** a standalone table shaped like the ledger, filled from the file, then attached */
  createStandalone: (p: string) => `create table ${p} (like canon.events including defaults including constraints)`,
  insertLines: (p: string) => `
    insert into ${p} (position, entity_id, seq, kind, payload, correlation_id, causation_id, trace_id, actor,
                      created_at, prev_hash, hash)
    select (l->>'position')::bigint, l->>'entity_id', (l->>'seq')::int, l->>'kind', l->'payload',
           l->>'correlation_id', (l->>'causation_id')::bigint, l->>'trace_id', l->>'actor',
           (l->>'created_at')::timestamptz, decode(l->>'prev_hash', 'hex'), decode(l->>'hash', 'hex')
      from jsonb_array_elements($1::jsonb) l`,
  /** `from` and `to` come from monthBounds() (DDL takes no parameters) */
  attach: (p: string, b: { from: string; to: string }) =>
    `alter table canon.events attach partition ${p} for values from ('${b.from}') to ('${b.to}')`,
  recordedHeads: `select entity_id, first_seq, last_seq, encode(last_hash, 'hex') as last_hash
                    from canon.archived_heads where month = $1::date order by entity_id`,
  markRestored: `update canon.ledger_archives set restored_at = now(), restored_by = session_user where month = $1::date`,
  /** the archived months an entity's kept history starts after (trace says which part is archived) */
  entityArchived: `
    select a.month::text, h.first_seq, h.last_seq, a.file_name
      from canon.archived_heads h join canon.ledger_archives a on a.month = h.month and a.restored_at is null
     where h.entity_id = $1 order by h.first_seq`,
} as const;
