// Recomputes the hash chain from the stored rows. Each event's hash is recomputed from its
// own fields and its predecessor's stored hash, so an edited field breaks its own link and
// an edited hash breaks the next one; seq gaps and a stale entity head are reported too.
export const AUDIT_SQL = {
  breaks: `
    with e as (
      select entity_id, seq, hash, prev_hash,
             lag(hash) over w as stored_prev,
             row_number() over w as rn,
             canon.event_hash(lag(hash) over w, entity_id, seq, kind, payload, correlation_id, causation_id,
                              trace_id, actor, created_at) as expected_hash
        from canon.events
       where ($1::text is null or entity_id = $1)
      window w as (partition by entity_id order by seq)
    ), bad as (
      select entity_id, seq,
             case when seq <> rn then 'seq_gap'
                  when prev_hash is distinct from stored_prev then 'prev_hash_mismatch'
                  else 'hash_mismatch' end as problem,
             encode(expected_hash, 'hex') as expected_hash, encode(hash, 'hex') as actual_hash,
             row_number() over (partition by entity_id order by seq) as k
        from e
       where seq <> rn or prev_hash is distinct from stored_prev or hash <> expected_hash
    )
    select entity_id, seq, problem, expected_hash, actual_hash from bad where k = 1
    order by entity_id limit $2`,
  heads: `
    select en.id as entity_id, en.head_seq, encode(en.head_hash, 'hex') as head_hash,
           max(ev.seq) as last_seq, encode((array_agg(ev.hash order by ev.seq desc))[1], 'hex') as last_hash
      from canon.entities en left join canon.events ev on ev.entity_id = en.id
     where ($1::text is null or en.id = $1)
     group by en.id
    having en.head_seq <> coalesce(max(ev.seq), 0)
        or en.head_hash is distinct from (array_agg(ev.hash order by ev.seq desc))[1]
     limit $2`,
  counts: `select count(*)::bigint as events, count(distinct entity_id)::bigint as entities from canon.events where ($1::text is null or entity_id = $1)`,
} as const;
