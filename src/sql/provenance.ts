// What the provenance report attests and what its debugger checks, read for a whole list of
// entities at once (a report of N claims costs the same few statements as one).
import { AUDIT_SQL } from './audit.js';

/** `sql` with its parameters $1..$n renamed to the given numbers (to embed one statement in another). */
const renumber = (sql: string, to: number[]) => sql.replace(/\$(\d+)/g, (_, n: string) => `$${to[Number(n) - 1]}`);

const entities = `
    select e.id as entity_id, e.head_seq, encode(e.head_hash, 'hex') as head_hash, s.status, p.last_pruned_at as pruned_at
      from canon.entities e left join canon.entity_status s on s.entity_id = e.id
      left join canon.entity_pruned p on p.entity_id = e.id
     where e.id = any ($1::text[])`;
// The claimed runs as they are now, by trace id ($2), wherever they belong: those of the
// claimed entities ($1) through job_runs_entity_idx (one probe an entity instead of one a run
// in the trace id index), then whichever claimed trace ids are not among them (a run moved to
// another entity, or gone) by trace id. trace_id is unique, so no run comes twice.
const runCols = 'id as run_id, trace_id, job_id, type, attempt, status, entity_id';
const runsByTrace = `
    with of_entities as (select ${runCols} from canon.job_runs where entity_id = any ($1::text[]) and trace_id = any ($2::text[]))
    select * from of_entities
    union all
    select ${runCols} from canon.job_runs
     where trace_id = any (array(select unnest($2::text[]) except select trace_id from of_entities))`;
// the latest event of each proof kind per entity (the pipeline's results), with its seq
const proofEvents = `
    select distinct on (entity_id, kind) entity_id, kind, seq, payload
      from canon.events
     where entity_id = any ($1::text[]) and kind = any ($2::text[])
     order by entity_id, kind, seq desc`;
// the stored hash at each claimed head: $1 entity ids, $2 seqs (same length)
const hashesAt = `
    select ev.entity_id, ev.seq, encode(ev.hash, 'hex') as hash
      from unnest($1::text[], $2::int[]) as c(entity_id, seq)
      join canon.events ev on ev.entity_id = c.entity_id and ev.seq = c.seq`;

export const PROVENANCE_SQL = {
  snapshotTime: `select to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as ts`,
  entities,
  runsOfEntities: `
    select ${runCols} from canon.job_runs where entity_id = any ($1::text[]) order by entity_id, id`,
  proofEvents,
  // Everything the debugger reads, in one statement (one round trip instead of seven): the
  // entities, the stored hashes at the claimed heads, the claimed runs by trace id, the proof
  // events, and the chain audit of the entities (AUDIT_SQL.breaks and .heads as they are,
  // their chunk bounds null). $1 entity ids, $2 the audit's limit, $3 and $4 null, $5 and $6
  // the claimed heads (entity ids, seqs), $7 the claimed runs' trace ids, $8 the proof kinds.
  // One row; each part is a json array of its rows.
  check: `
    with ent as (${entities}),
         at_head as (${renumber(hashesAt, [5, 6])}),
         run as (${renumber(runsByTrace, [1, 7])}),
         proof as (${renumber(proofEvents, [1, 8])}),
         brk as (${AUDIT_SQL.breaks}),
         head as (${AUDIT_SQL.heads})
    select (select coalesce(json_agg(ent), '[]') from ent) as entities,
           (select coalesce(json_agg(at_head), '[]') from at_head) as hashes_at,
           (select coalesce(json_agg(run), '[]') from run) as runs,
           (select coalesce(json_agg(proof), '[]') from proof) as proofs,
           (select coalesce(json_agg(brk), '[]') from brk) as breaks,
           (select coalesce(json_agg(head), '[]') from head) as heads`,
} as const;
