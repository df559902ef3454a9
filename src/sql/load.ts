// Queries of `canon load`: the emptiness check, the resumable progress marker (a settings row),
// the bulk COPY statements, and the finishing touches (sequences, status rows, statistics).

/** The columns each COPY writes, in the order of the loader's CSV rows (src/load/rows.ts). */
export const COPY_COLUMNS = {
  entities: ['id', 'created_at', 'head_seq', 'head_hash'],
  events: [
    'position',
    'entity_id',
    'seq',
    'kind',
    'payload',
    'correlation_id',
    'causation_id',
    'trace_id',
    'actor',
    'created_at',
    'prev_hash',
    'hash',
  ],
  jobs: [
    'id',
    'lane',
    'type',
    'entity_id',
    'status',
    'payload',
    'priority',
    'attempts',
    'max_attempts',
    'run_at',
    'locked_by',
    'locked_at',
    'heartbeat_at',
    'lease_expires_at',
    'dedupe_key',
    'correlation_id',
    'trace_id',
    'source_event_position',
    'via_gateway',
    'hold_reason',
    'last_error',
    'last_reason',
    'created_by',
    'created_at',
    'updated_at',
    'finished_at',
  ],
  job_runs: [
    'id',
    'job_id',
    'attempt',
    'lane',
    'type',
    'entity_id',
    'worker_id',
    'trace_id',
    'correlation_id',
    'status',
    'reason',
    'error',
    'started_at',
    'heartbeat_at',
    'lease_expires_at',
    'finished_at',
    'result_event_position',
    'detail',
  ],
} as const;

export const LOAD_SQL = {
  occupancy: `
    select exists (select 1 from canon.events) as events, exists (select 1 from canon.jobs) as jobs,
           exists (select 1 from canon.entities) as entities,
           (select value from canon.settings where key = 'load') as marker`,
  isSuperuser: `select rolsuper from pg_roles where rolname = current_user`,
  currentUser: `select current_user as name`,
  // the loading session skips every ordinary trigger (the chain, the core trigger, the status
  // and gateway triggers, and foreign-key checks): the loader writes what they would have
  bypassTriggers: `set session_replication_role = replica`,
  // every month the dataset spans gets its ledger partition first (not the default one): $1 now (µs), $2 days
  eventPartitions: `select canon.ensure_event_partitions(to_timestamp($1::float8 / 1e6) - $2::float8 * interval '1 day')`,
  maxima: `
    select coalesce((select max(position) from canon.events), 0)::bigint as position,
           coalesce((select max(id) from canon.jobs), 0)::bigint as job,
           coalesce((select max(id) from canon.job_runs), 0)::bigint as run`,
  copy: (table: keyof typeof COPY_COLUMNS) =>
    `copy canon.${table} (${COPY_COLUMNS[table].join(', ')}) from stdin with (format csv)`,
  // what the status triggers would have written, computed per chunk from the rows just copied
  statusRows: `
    insert into canon.entity_status (entity_id, status, health_score, jobs_total, jobs_queued, jobs_running, jobs_blocked,
                                     jobs_succeeded, jobs_failed, jobs_cancelled, jobs_dead, runs_total, runs_running,
                                     runs_succeeded, runs_failed, runs_cancelled)
    select entity_id, status, health_score, jobs_total, jobs_queued, jobs_running, jobs_blocked, jobs_succeeded, jobs_failed,
           jobs_cancelled, jobs_dead, runs_total, runs_running, runs_succeeded, runs_failed, runs_cancelled
      from canon.entity_status_compute($1::text[])`,
  saveMarker: `
    insert into canon.settings (key, value) values ('load', $1)
    on conflict (key) do update set value = excluded.value, updated_at = now(), updated_by = session_user`,
  // identity sequences continue after the loaded rows
  setSequences: `
    select setval(pg_get_serial_sequence('canon.events', 'position'), greatest((select max(position) from canon.events), 1)),
           setval(pg_get_serial_sequence('canon.jobs', 'id'), greatest((select max(id) from canon.jobs), 1)),
           setval(pg_get_serial_sequence('canon.job_runs', 'id'), greatest((select max(id) from canon.job_runs), 1))`,
  workers: `
    insert into canon.workers (id, role, lanes, pid, host, concurrency, pipeline, version, started_at, heartbeat_at, stopped_at)
    select w, 'work', array['decision', 'execution'], null, 'canon-load', 8, 'example', 'canon-load', $2, $3, $3
      from unnest($1::text[]) as w
    on conflict (id) do nothing`,
  analyze: `analyze canon.entities, canon.events, canon.jobs, canon.job_runs, canon.entity_status, canon.workers`,
  counts: `
    select (select count(*) from canon.entities)::bigint as entities, (select count(*) from canon.events)::bigint as events,
           (select count(*) from canon.jobs)::bigint as jobs, (select count(*) from canon.job_runs)::bigint as runs`,
} as const;
