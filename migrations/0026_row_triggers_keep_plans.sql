-- canon migration | class: core | breaking: no
-- The row triggers that fire inside a claim or a completion keep their cached plans. A
-- function's SET clause is in force for everything it calls, triggers included, so since
-- 0020 put plan_cache_mode = force_custom_plan on canon.complete_runs, the chain trigger
-- planned its two primary-key statements (lock the entity's head, move it) afresh for every
-- result event, and the breaker and gateway triggers theirs for every run and job: 20,000
-- plans of the head update alone per 20,000 completions, ~0.4 s of server CPU for the chain
-- trigger (pg_stat_user_functions self time 1,254 → 766 ms for 18,490 events). Their
-- statements look rows up by primary key, so the plan cache's default choice is the right
-- one, as it is when the same triggers fire under any other caller.
alter function canon.events_before_insert() set plan_cache_mode = auto;
alter function canon.breaker_on_run_end() set plan_cache_mode = auto;
alter function canon.jobs_before_insert() set plan_cache_mode = auto;
