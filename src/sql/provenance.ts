// What the provenance report attests and what its debugger checks, read for a whole list of
// entities at once (a report of N claims costs the same few statements as one).
export const PROVENANCE_SQL = {
  snapshotTime: `select to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as ts`,
  entities: `
    select e.id as entity_id, e.head_seq, encode(e.head_hash, 'hex') as head_hash, s.status
      from canon.entities e left join canon.entity_status s on s.entity_id = e.id
     where e.id = any ($1::text[])`,
  runsOfEntities: `
    select id as run_id, trace_id, job_id, type, attempt, status, entity_id
      from canon.job_runs where entity_id = any ($1::text[]) order by entity_id, id`,
  runsByTrace: `select id as run_id, trace_id, job_id, type, attempt, status, entity_id from canon.job_runs where trace_id = any ($1::text[])`,
  // the latest event of each proof kind per entity (the pipeline's results), with its seq
  proofEvents: `
    select distinct on (entity_id, kind) entity_id, kind, seq, payload
      from canon.events
     where entity_id = any ($1::text[]) and kind = any ($2::text[])
     order by entity_id, kind, seq desc`,
  // the stored hash at each claimed head: $1 entity ids, $2 seqs (same length)
  hashesAt: `
    select ev.entity_id, ev.seq, encode(ev.hash, 'hex') as hash
      from unnest($1::text[], $2::int[]) as c(entity_id, seq)
      join canon.events ev on ev.entity_id = c.entity_id and ev.seq = c.seq`,
} as const;
