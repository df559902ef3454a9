-- canon definitions | class: core | requires: runs
-- Read models for operators: the derived dead-job view.

-- Dead is derived, never stored: a job that ended in status failed (attempts exhausted,
-- permanent failure, or TTL rescue with no attempts left) and that nobody has retried yet.
create or replace view canon.dead_jobs as
select j.*
  from canon.jobs j
 where j.status = 'failed'
   and not exists (select 1 from canon.job_actions a where a.job_id = j.id and a.action = 'retry');
revoke all on table canon.dead_jobs from public;
grant select on table canon.dead_jobs to canon_reader;
