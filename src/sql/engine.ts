// Queries of the workers, the decider, the executor and tick.
// overlapping ticks skip: the second finds this advisory lock taken (src/db/connect.ts holdAdvisoryLock)
export const TICK_LOCK_KEY = 7263511043;
export const ENGINE_SQL = {
  // canon.declare_job_type (migrations/repeatable/gateway.sql); name is null for a decision-lane name
  upsertJobType: `select canon.declare_job_type($1, $2, $3, $4, $5, $6, $7, $8) as name`,
  jobTypeLane: `select lane from canon.job_types where name = $1`,
  ensureFlag: `
    insert into canon.flags (name, description, enabled) values ($1, $2, $3)
    on conflict (name) do nothing`,
  setActor: `select set_config('canon.actor', $1, true), set_config('canon.reason', $2, true), set_config('canon.source', $3, true)`,
  registerWorker: `
    insert into canon.workers (id, role, lanes, pid, host, concurrency, pipeline, version)
    values ($1, $2, $3, $4, $5, $6, $7, $8)
    on conflict (id) do update set heartbeat_at = now(), stopped_at = null`,
  workerHeartbeat: `update canon.workers set heartbeat_at = now(), in_flight = $2 where id = $1`,
  workerStopped: `update canon.workers set stopped_at = now(), in_flight = 0 where id = $1`,
  // the claim with each job's run id in one round trip
  claimRuns: `select run_id, id, lane, type, entity_id, payload, attempts, max_attempts, correlation_id, trace_id, source_event_position
                from canon.claim_runs($1, $2, $3)`,
  // the same claim with each job's entity history as a JSON array: the
  // execution lane's claim, so handlers start without a query each
  claimRunsWithHistory: `select run_id, id, lane, type, entity_id, payload, attempts, max_attempts, correlation_id, trace_id,
                                source_event_position, events
                           from canon.claim_runs_with_history($1, $2, $3)`,
  typeTimeouts: `select name, timeout_seconds from canon.job_types`,
  heartbeat: `select canon.heartbeat_runs($1, $2) as id`,
  // the decider's two calls for a batch: every run's fence and entity lock, with each
  // entity's history and flags ($3 = the pipeline's declared flag names); then every write
  // ($2 = [{run_id, required: [{type, event_payload, job_payload, dedupe_key, priority}],
  // detail}] or [{run_id, error}]) and every run's end
  beginDecisions: `select run_id, owned, job_status, entity_id, events, flags from canon.begin_decisions($1, $2, $3)`,
  finishDecisions: `select run_id, ok, outcome from canon.finish_decisions($1, $2::jsonb)`,
  complete: `select ok, event_position from canon.complete_run($1, $2, $3::jsonb, $4)`,
  // many completions in one transaction: $1 = [{run_id, worker_id, result, event_kind}]
  completeMany: `select run_id, ok, event_position from canon.complete_runs($1::jsonb)`,
  fail: `select ok, outcome, event_position from canon.fail_run($1, $2, $3, $4, $5)`,
  release: `select canon.release_run($1, $2, $3) as ok`,
  rescue: `select job_id, run_id, outcome from canon.rescue_stuck($1)`,
  // the ledger's next months get their partitions ahead of time (decision 0034)
  eventPartitions: `select canon.ensure_event_partitions() as created`,
  // what a claim could take now: --once stops when this is empty (paused types, held jobs and
  // open breakers wait for an operator, not for this worker)
  queuedReady: `select j.lane, count(*)::int as n
                  from canon.jobs j join canon.job_types t on t.name = j.type
                 where j.status = 'queued' and j.run_at <= now() and j.hold_reason is null and not t.paused
                   -- a half-open breaker's probe is running: its type waits for the probe's end
                   and not exists (select 1 from canon.breakers b
                                    where b.job_type = j.type
                                      and (b.state = 'half_open' or (b.state = 'open' and b.next_attempt_at > now())))
                 group by j.lane`,
} as const;
