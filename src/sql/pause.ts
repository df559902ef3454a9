// Pausing a job type: claims skip paused types (canon.claim_runs); canon.job_type_pause
// records who and why in the steering log.
export const PAUSE_SQL = {
  set: `select canon.job_type_pause($1, $2, $3, $4) as result`,
  paused: `select t.name as job_type, t.lane, t.paused_at, t.paused_by, t.pause_reason,
                  (select count(*)::int from canon.jobs j where j.type = t.name and j.status = 'queued') as queued
             from canon.job_types t where t.paused order by t.name`,
} as const;
