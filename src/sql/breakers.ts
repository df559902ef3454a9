// Circuit breaker queries. The accounting itself is done in Postgres as runs end;
// these read the state and let an operator force it.
export const BREAKERS_SQL = {
  list: `select t.name as job_type, coalesce(b.state, 'closed') as state, coalesce(b.failure_count, 0) as failure_count,
                t.breaker_threshold as threshold, t.breaker_cooldown_seconds::float8 as cooldown_seconds,
                b.opened_at, b.next_attempt_at, b.probe_job_id, b.reason, b.updated_at, b.updated_by, t.paused,
                (select count(*)::int from canon.jobs j where j.type = t.name and j.status = 'queued') as queued
           from canon.job_types t
           left join canon.breakers b on b.job_type = t.name
          where t.lane = 'execution'
          order by t.name`,
  notClosed: `select b.job_type, b.state, b.failure_count, b.opened_at, b.next_attempt_at, b.probe_job_id, b.reason
                from canon.breakers b where b.state <> 'closed' order by b.job_type`,
  force: `select b.job_type, b.state, b.failure_count, b.opened_at, b.next_attempt_at, b.probe_job_id, b.reason,
                 b.updated_at, b.updated_by
            from canon.breaker_force($1, $2, $3, $4, $5) b`,
} as const;
