-- canon migration | class: infra
-- Storage settings of the tables every job rewrites (docs/decisions/0030-hot-tables-kept-healthy.md
-- has the measurements behind each number). Postgres' defaults vacuum a table once a fifth of
-- it is dead: on a jobs table of millions of rows that is hundreds of thousands of dead
-- versions in the claim's index range before autovacuum starts. These tables vacuum at 1–5 %.
-- A fillfactor applies to pages written from now on; existing pages fill up as they are.

-- jobs and job_runs: the claim and the end of every job and run change `status`, a column in
-- the predicate of partial indexes, so those updates are never HOT; only heartbeats can be
-- (0007), and they are few next to them. Reserving page space would mostly make the tables
-- larger. What keeps them healthy is vacuuming often and fast, and analysing often enough
-- that the claim's plan sees the queue.
alter table canon.jobs set (
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_vacuum_insert_scale_factor = 0.05,
  autovacuum_analyze_scale_factor = 0.02,
  autovacuum_vacuum_cost_delay = 1,
  autovacuum_vacuum_cost_limit = 2000
);
alter table canon.job_runs set (
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_vacuum_insert_scale_factor = 0.05,
  autovacuum_analyze_scale_factor = 0.02,
  autovacuum_vacuum_cost_delay = 1,
  autovacuum_vacuum_cost_limit = 2000
);

-- entity_status: rewritten at the commit of every transaction that touches an entity's jobs
-- or runs; only its primary key is indexed and the key never changes, so every update can be
-- HOT when the page has room for the new version: keep 30 % of each page free for it.
alter table canon.entity_status set (
  fillfactor = 70,
  autovacuum_vacuum_scale_factor = 0.02,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_vacuum_cost_delay = 1
);

-- entities: every append moves the entity's head (head_seq, head_hash); only the primary key
-- is indexed, so those updates can be HOT too. Rows are small and an entity gets a handful of
-- events, so 20 % free space is enough.
alter table canon.entities set (
  fillfactor = 80,
  autovacuum_vacuum_scale_factor = 0.05,
  autovacuum_vacuum_cost_delay = 1
);
