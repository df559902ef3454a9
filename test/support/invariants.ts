// The guarantees the reliability suite checks after every fault, as SQL over the whole
// database (or the given entities): each one returns the rows that break it, so a failure
// names the job, run or event at fault.
import type pg from 'pg';
import { verifyChains } from '../../src/audit.js';
import { STATUS_SQL } from '../../src/sql/status.js';

const scope = (col: string) => `($1::text[] is null or ${col} = any ($1))`;

export const INVARIANTS: Record<string, string> = {
  // nothing doubled: a job has at most one result event, and a succeeded job exactly one
  result_events_per_job: `
    select j.id, j.status, count(e.position)::int as results
      from canon.jobs j
      left join canon.events e on e.entity_id = j.entity_id and e.kind in (j.type || '.succeeded', j.type || '.failed')
                               and (e.payload->>'job_id')::bigint = j.id
     where j.lane = 'execution' and ${scope('j.entity_id')}
     group by j.id, j.status
    having count(e.position) > 1 or (j.status = 'succeeded' and count(e.position) filter (where e.kind like '%.succeeded') <> 1)
        or (j.status in ('queued', 'running') and count(e.position) > 0)`,
  // no partial state: a result event whose job did not end that way
  result_event_without_job: `
    select e.position, e.kind, e.payload->>'job_id' as job_id, j.status
      from canon.events e
      left join canon.jobs j on j.id = (e.payload->>'job_id')::bigint
     where (e.kind like '%.succeeded' or e.kind like '%.failed') and e.payload ? 'job_id' and ${scope('e.entity_id')}
       and (j.id is null or j.status <> case when e.kind like '%.succeeded' then 'succeeded' else 'failed' end)`,
  // every result event carries the trace id and correlation id of the run that wrote it
  result_event_untraced: `
    select e.position, e.kind, e.trace_id, e.correlation_id
      from canon.events e
     where (e.kind like '%.succeeded' or e.kind like '%.failed') and e.payload ? 'job_id' and ${scope('e.entity_id')}
       and not exists (select 1 from canon.job_runs r
                        where r.job_id = (e.payload->>'job_id')::bigint and r.trace_id = e.trace_id
                          and r.correlation_id = e.correlation_id)`,
  // event_to_job_gap: a required event and its job commit together
  required_event_without_job: `
    select e.position, e.kind from canon.events e
     where e.kind like 'job.%.required' and ${scope('e.entity_id')}
       and not exists (select 1 from canon.jobs j where j.source_event_position = e.position)`,
  // a succeeded job has exactly one succeeded run, which names its result event
  succeeded_runs_per_job: `
    select j.id, j.status, count(r.id) filter (where r.status = 'succeeded')::int as ok_runs
      from canon.jobs j left join canon.job_runs r on r.job_id = j.id
     where ${scope('j.entity_id')}
     group by j.id, j.status
    having count(r.id) filter (where r.status = 'succeeded') > 1
        or (j.status = 'succeeded') <> (count(r.id) filter (where r.status = 'succeeded') = 1)
        or (j.lane = 'execution' and count(r.id) filter (where r.status = 'succeeded' and r.result_event_position is null) > 0)`,
  // a running job has exactly one running run, the one its trace id names; no other run runs
  running_state: `
    select j.id, j.status, j.trace_id, count(r.id) filter (where r.status = 'running')::int as running_runs,
           bool_or(r.status = 'running' and r.trace_id = j.trace_id) as owner_run
      from canon.jobs j left join canon.job_runs r on r.job_id = j.id
     where ${scope('j.entity_id')}
     group by j.id, j.status, j.trace_id
    having (j.status = 'running') <> (count(r.id) filter (where r.status = 'running') = 1)
        or (j.status = 'running' and not coalesce(bool_or(r.status = 'running' and r.trace_id = j.trace_id), false))
        or count(r.id) filter (where r.status = 'running') > 1`,
  // every attempt is one run (a released run keeps its number too)
  attempts_are_runs: `
    select j.id, j.attempts, count(r.id)::int as runs
      from canon.jobs j left join canon.job_runs r on r.job_id = j.id
     where ${scope('j.entity_id')}
     group by j.id, j.attempts having j.attempts <> count(r.id)`,
  // the same result kind twice for one entity (the seed guide's duplicate query, for run results)
  duplicate_results: `
    select entity_id, kind, count(*)::int as n from canon.events
     where (kind like '%.succeeded' or kind like '%.failed') and ${scope('entity_id')}
     group by entity_id, kind having count(*) > 1`,
};

export interface InvariantReport {
  violations: Record<string, unknown[]>;
  ok: boolean;
}

/** Runs every invariant, the hash-chain audit and the status recomputation. */
export async function checkInvariants(
  db: pg.Pool | pg.ClientBase,
  entities: string[] | null = null,
  opts: { duplicates?: boolean } = {},
): Promise<InvariantReport> {
  const violations: Record<string, unknown[]> = {};
  for (const [name, sql] of Object.entries(INVARIANTS)) {
    if (name === 'duplicate_results' && opts.duplicates === false) continue;
    const rows = (await db.query(sql, [entities])).rows;
    if (rows.length) violations[name] = rows.slice(0, 10);
  }
  const audit = await verifyChains(db, entities ?? undefined, 10);
  if (!audit.ok) violations.audit_chain = audit.breaks;
  if (entities === null) {
    const diff = (await db.query(STATUS_SQL.differences)).rows;
    if (diff.length) violations.status_derived = diff.slice(0, 10);
  }
  return { violations, ok: Object.keys(violations).length === 0 };
}

/** The example pipeline's outcome per entity: done (anchored), failed, or neither (lost if the system is idle). */
export async function outcomes(
  db: pg.Pool,
  prefix: string,
): Promise<{ done: number; failed: number; open: string[]; doubled: number }> {
  const r = (
    await db.query(
      `select entity_id,
              count(*) filter (where kind = 'anchor.succeeded')::int as anchored,
              count(*) filter (where kind like '%.failed')::int as failed,
              count(*) filter (where kind like '%.succeeded')::int - count(distinct kind) filter (where kind like '%.succeeded')::int as doubled
         from canon.events where entity_id like $1 || '%' group by entity_id`,
      [prefix],
    )
  ).rows as { entity_id: string; anchored: number; failed: number; doubled: number }[];
  return {
    done: r.filter((x) => x.anchored === 1).length,
    failed: r.filter((x) => x.anchored === 0 && x.failed > 0).length,
    open: r.filter((x) => x.anchored === 0 && x.failed === 0).map((x) => x.entity_id),
    doubled: r.reduce((n, x) => n + x.doubled, 0),
  };
}
