// Operator actions on jobs (`canon jobs retry | cancel`), each recorded in canon.job_actions.
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
} as const;
