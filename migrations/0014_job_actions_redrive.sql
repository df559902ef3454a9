-- canon migration | class: core
-- `canon jobs redrive <entity_id>` records each job it enqueues in job_actions: for an event
-- the gap rule finds without its job, the job the gateway created for it. The row names that
-- job twice (job_id, the job acted on, and new_job_id, the job made), as a retry names the one
-- it made; no event is appended, so event_position stays null. A cancel makes no job.
alter table canon.job_actions drop constraint job_actions_action_check;
alter table canon.job_actions add constraint job_actions_action_check
  check (action in ('retry', 'cancel', 'redrive'));
alter table canon.job_actions drop constraint job_actions_retry_has_job;
alter table canon.job_actions add constraint job_actions_new_job_when_made
  check ((action in ('retry', 'redrive')) = (new_job_id is not null));
