// Ledger audit: recomputes the hash chains from the stored rows, and reads the register of
// edits that were refused or that bypassed the triggers (the canon.ledger_* sequences).
//
// Each event's hash is recomputed from its own fields and its predecessor's *stored* hash, so
// an edited field breaks its own link and an edited hash breaks its own link too (the stored
// value no longer matches the recomputation); an edited prev_hash shows as a prev_hash
// mismatch; an edited seq as a gap in 1..n. position is not checked: it is drawn before the
// chain trigger takes the entity's lock, so under contention it can legitimately come out of
// seq order, and it is not part of the hash.
// The first broken link of each entity is reported: everything after it is suspect anyway.
// An entity whose early events are archived (canon archive) verifies from the archived head:
// its first kept event must link to the head its archived month recorded.
// $3 and $4 bound the entity ids (exclusive, inclusive) so a whole-ledger audit goes in chunks.
export const AUDIT_SQL = {
  breaks: `
    with e as (
      select entity_id, seq, hash, prev_hash, kind, payload, correlation_id, causation_id, trace_id, actor, created_at,
             lag(seq) over w as kept_prev_seq,
             lag(hash) over w as kept_prev_hash
        from canon.events
       where ($1::text[] is null or entity_id = any ($1))
         and ($3::text is null or entity_id > $3) and ($4::text is null or entity_id <= $4)
      window w as (partition by entity_id order by seq)
    ), l as (
      -- an event links to its kept predecessor, or starts the chain, or follows an archived
      -- month: then its predecessor is that month's head for the entity (canon archive)
      select e.*,
             case when e.kept_prev_seq = e.seq - 1 then e.kept_prev_hash
                  when e.seq = 1 and e.kept_prev_seq is null then null
                  else a.last_hash end as stored_prev,
             (e.kept_prev_seq = e.seq - 1 or (e.seq = 1 and e.kept_prev_seq is null) or a.last_hash is not null) as linked
        from e
        left join lateral (
          select h.last_hash from canon.archived_heads h
            join canon.ledger_archives la on la.month = h.month and la.restored_at is null
           where e.seq > 1 and e.kept_prev_seq is distinct from e.seq - 1
             and h.entity_id = e.entity_id and h.last_seq = e.seq - 1
           limit 1) a on true
    ), bad as (
      select entity_id, case when linked then seq else coalesce(kept_prev_seq, 0) + 1 end::int as seq, seq as found_seq,
             case when not linked then 'seq_gap'
                  when prev_hash is distinct from stored_prev then 'prev_hash_mismatch'
                  else 'hash_mismatch' end as problem,
             case when not linked then null
                  when prev_hash is distinct from stored_prev then encode(stored_prev, 'hex')
                  else encode(recomputed, 'hex') end as expected_hash,
             case when not linked then null
                  when prev_hash is distinct from stored_prev then encode(prev_hash, 'hex')
                  else encode(hash, 'hex') end as actual_hash,
             row_number() over (partition by entity_id order by seq) as k
        from (select l.*, canon.event_hash(stored_prev, entity_id, seq, kind, payload, correlation_id, causation_id,
                                           trace_id, actor, created_at) as recomputed
                from l) r
       where not linked or prev_hash is distinct from stored_prev or hash is distinct from recomputed
    )
    select entity_id, seq, found_seq, problem, expected_hash, actual_hash from bad where k = 1
     order by entity_id limit $2`,
  // entity heads that do not name their last event (an appended or removed row, or an edited
  // head); the last event may be in an archived month
  heads: `
    select en.id as entity_id, en.head_seq, encode(en.head_hash, 'hex') as head_hash,
           top.seq as last_seq, encode(top.hash, 'hex') as last_hash
      from canon.entities en
      left join lateral (select seq, hash from canon.events ev where ev.entity_id = en.id order by seq desc limit 1) last on true
      left join lateral (
        select h.last_seq as seq, h.last_hash as hash from canon.archived_heads h
          join canon.ledger_archives la on la.month = h.month and la.restored_at is null
         where h.entity_id = en.id order by h.last_seq desc limit 1) arch on true
      cross join lateral (
        select case when arch.seq > coalesce(last.seq, 0) then arch.seq else last.seq end as seq,
               case when arch.seq > coalesce(last.seq, 0) then arch.hash else last.hash end as hash) top
     where ($1::text[] is null or en.id = any ($1))
       and ($3::text is null or en.id > $3) and ($4::text is null or en.id <= $4)
       and (en.head_seq is distinct from coalesce(top.seq, 0) or en.head_hash is distinct from top.hash)
     order by en.id limit $2`,
  // the last entity id of the next chunk of $2 + 1 entities after $1 (null: the rest is the last chunk)
  chunkEnd: `select id from canon.entities where ($1::text is null or id > $1) order by id offset $2 limit 1`,
  entityCount: `select count(*)::bigint as n from canon.entities`,
  counts: `select count(*)::bigint as events, count(distinct entity_id)::bigint as entities from canon.events where ($1::text[] is null or entity_id = any ($1))`,
  register: `select * from canon.ledger_edit_register()`,
  acknowledged: `select key, value from canon.settings where key in ('ledger_refused_ack', 'ledger_bypass_ack')`,
  acknowledge: `
    insert into canon.settings (key, value, updated_by) values ('ledger_refused_ack', $1, $3), ('ledger_bypass_ack', $2, $3)
    on conflict (key) do update set value = excluded.value, updated_at = now(), updated_by = excluded.updated_by`,
} as const;
