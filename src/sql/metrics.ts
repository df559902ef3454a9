// Queries only `canon serve` runs per scrape, besides the health snapshot.
export const METRICS_SQL = {
  // runs finished since the last scrape, keyset-paged on (finished_at, id); the 5 s margin lets
  // a completing transaction commit before its finished_at falls behind the watermark
  runsSince: `select id, type, status, extract(epoch from finished_at - started_at)::float8 as seconds,
                     finished_at::text as finished_at -- text keeps the microseconds the keyset needs
                from canon.job_runs
               where finished_at is not null
                 and (finished_at, id) > ($1::timestamptz, $2::bigint)
                 and finished_at <= now() - interval '5 seconds'
               order by finished_at, id
               limit $3`,
  start: `select now()::text as at`,
  // the probes time the two reads the seed's TaskDB guide sets targets for, on recent entities
  recentEntities: `select entity_id from canon.events order by position desc limit 200`,
} as const;
