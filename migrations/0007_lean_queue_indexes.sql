-- canon migration | class: core
-- Every job is written three times (queued, claimed, finished) and every run twice, and none of
-- those updates can be HOT (each changes a column an index holds or filters on), so each
-- version pays an entry in every index whose predicate it meets. Indexes that no query needs
-- on its own go; the indexes of running work key on columns a heartbeat does not change, so
-- a heartbeat, which only moves heartbeat_at and lease_expires_at, can be a HOT update.
-- docs/PERFORMANCE.md lists each remaining index with the query that uses it.

-- (entity_id, id) serves every per-entity query: the gap rule's newest-decision probe, the
-- status recount, trace, and "is this failed job superseded?" (an entity's few jobs, filtered
-- by type).
drop index canon.jobs_entity_type_idx;
-- ready jobs per lane: jobs_claim_idx (lane, priority, run_at, id) where queued answers it,
-- index-only.
drop index canon.jobs_queued_lane_idx;
-- no query looks runs up by worker, nor scans the running runs: each fence, heartbeat and
-- completion finds its runs by id.
drop index canon.job_runs_worker_idx;
drop index canon.job_runs_running_idx;

-- The running jobs are few (bounded by the workers' concurrency): a rescue or a stuck count
-- reads all of them and filters on heartbeat_at, which therefore need not be a key.
drop index canon.jobs_running_idx;
create index jobs_running_idx on canon.jobs (type, locked_at) where status = 'running';
