-- canon migration | class: core | breaking: no
-- The claim functions plan their statements for the values of each call. plpgsql keeps a
-- statement's plan per session and, after five calls, switches to a generic plan when it
-- looks no worse; on a young database (the queue filling, runs and events growing by
-- thousands a minute, statistics taken when the tables were nearly empty) the generic plan
-- chosen then scans tables that are large an hour later, and stays until the next ANALYZE.
-- Measured on one session after 400 queued jobs: a claim of 10 took 12–25 ms with the cached
-- generic plan and 2.7–3.1 ms planned per call. Planning a claim costs a fraction of a
-- millisecond; a stale plan costs a scan of the runs table per claim.
alter function canon.claim_jobs(text, text, integer) set plan_cache_mode = force_custom_plan;
alter function canon.claim_runs(text, text, integer) set plan_cache_mode = force_custom_plan;
alter function canon.complete_runs(jsonb) set plan_cache_mode = force_custom_plan;
