// canon/testing's integration run: how far the entities under test have come.
export const TESTING_SQL = {
  /** Jobs not yet ended (queued, also while backing off, or running), and counts that move while work happens. */
  progress: `select (select count(*) from canon.jobs where entity_id = any($1) and status in ('queued', 'running'))::int as pending,
                    (select count(*) from canon.events where entity_id = any($1))::int as events,
                    (select count(*) from canon.job_runs where entity_id = any($1))::int as runs`,
} as const;
