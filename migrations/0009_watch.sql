-- canon migration | class: infra | breaking: no
-- `canon watch` reads one snapshot per refresh (src/sql/watch.ts). Everything it needs is
-- answered by earlier indexes except the list of recent failures: the newest failed runs. On
-- job_runs_finished_idx that walk would step over every recent success first (thousands per
-- failure on a healthy queue), so failed runs get a partial index of their own; it stays as
-- small as the failures themselves.
create index job_runs_failed_finished_idx on canon.job_runs (finished_at) where status = 'failed';
