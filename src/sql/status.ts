// status_derived: the primary-key read behind `canon status <entity_id>`, and the comparison
// of every stored row with the set-based recomputation (the view canon.entity_status_recomputed)
// behind `canon status verify`.
export const STATUS_COLUMNS = [
  'status',
  'health_score',
  'jobs_total',
  'jobs_queued',
  'jobs_running',
  'jobs_blocked',
  'jobs_succeeded',
  'jobs_failed',
  'jobs_cancelled',
  'jobs_dead',
  'runs_total',
  'runs_running',
  'runs_succeeded',
  'runs_failed',
  'runs_cancelled',
] as const;

const cols = (alias: string) => STATUS_COLUMNS.map((c) => `${alias}.${c}`).join(', ');

export const STATUS_SQL = {
  read: `
    select s.entity_id, ${cols('s')},
           s.updated_at, e.head_seq, encode(e.head_hash, 'hex') as head_hash
      from canon.entity_status s join canon.entities e on e.id = s.entity_id
     where s.entity_id = $1`,
  count: `select count(*)::bigint as n from canon.entities`,
  // rows whose stored values differ from the recomputation, or that are missing on one side
  differences: `
    select coalesce(r.entity_id, s.entity_id) as entity_id,
           case when s.entity_id is null then null else jsonb_build_object(${STATUS_COLUMNS.map((c) => `'${c}', s.${c}`).join(', ')}) end as stored,
           case when r.entity_id is null then null else jsonb_build_object(${STATUS_COLUMNS.map((c) => `'${c}', r.${c}`).join(', ')}) end as expected
      from canon.entity_status_recomputed r
      full join canon.entity_status s on s.entity_id = r.entity_id
     where row(${cols('r')}) is distinct from row(${cols('s')})
     order by 1`,
  refresh: `select canon.refresh_entity_status($1::text[])`,
} as const;
