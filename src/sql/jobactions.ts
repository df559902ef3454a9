// Operator actions on jobs (`canon jobs retry | cancel | redrive`), each recorded in
// canon.job_actions.
import { ENTITY_GAP } from './diagnose.js';

export const JOB_ACTIONS_SQL = {
  lockJob: `select id, lane, type, entity_id, status, payload, priority, correlation_id, source_event_position, trace_id
              from canon.jobs where id = $1 for update`,
  retriedAs: `select new_job_id from canon.job_actions where job_id = $1 and action = 'retry'`,
  // the decider numbers requirements per type (dedupe key entity:type:ordinal); a retry is the next one
  requiredCount: `select count(*)::int as n from canon.events where entity_id = $1 and kind = $2`,
  record: `insert into canon.job_actions (job_id, action, from_status, new_job_id, event_position, actor, reason)
           values ($1, $2, $3, $4, $5, $6, $7) returning id, at`,
  cancelRun: `update canon.job_runs set status = 'cancelled', finished_at = now(), reason = 'cancelled', error = $2
               where job_id = $1 and status = 'running'`,
  cancelJob: `update canon.jobs set status = 'cancelled', finished_at = coalesce(finished_at, now()), locked_by = null,
                     last_error = coalesce($2, last_error), updated_at = now()
               where id = $1`,
  // redrive: one operator at a time per entity (two-key advisory lock, class 7263511; canon's
  // one-key locks are another space), so two redrives cannot both see the same gap
  redriveLock: `select pg_advisory_xact_lock(7263511, hashtext($1))`,
  entityExists: `select exists (select 1 from canon.entities where id = $1) as found`,
  // the entity's events without their job, by the gap rule diagnose and health apply
  entityGap: ENTITY_GAP,
  activeDecision: `select id, status from canon.jobs
                    where entity_id = $1 and lane = 'decision' and status in ('queued', 'running')
                    order by id limit 1`,
} as const;
