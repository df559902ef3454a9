-- canon migration | class: core | breaking: no
-- heartbeat_runs updated a worker's runs first and their jobs second, while complete_run,
-- fail_run and complete_runs (0008) take the job's row first and the run's second. A worker's
-- heartbeat and its own batch completion, on two connections, could each hold what the other
-- wanted next: "deadlock detected", the batch lost its transaction and the runs waited for a
-- TTL rescue. The heartbeat now locks the jobs first, in the order complete_runs uses (entity,
-- then job id), and only then touches runs and jobs. Same signature, same answer.
create or replace function canon.heartbeat_runs(p_worker_id text, p_run_ids bigint[])
returns setof bigint language plpgsql
security definer set search_path = pg_catalog, canon, pg_temp as $$
begin
  update canon.workers set heartbeat_at = now() where id = p_worker_id;
  perform 1 from canon.jobs j
   where j.id in (select r.job_id from canon.job_runs r
                   where r.id = any (p_run_ids) and r.worker_id = p_worker_id and r.status = 'running')
   order by j.entity_id, j.id
   for update of j;
  return query
  with r as (
    update canon.job_runs r
       set heartbeat_at = now(),
           lease_expires_at = now() + make_interval(secs => t.timeout_seconds)
      from canon.job_types t
     where r.id = any (p_run_ids) and r.worker_id = p_worker_id and r.status = 'running' and t.name = r.type
    returning r.id, r.job_id, r.trace_id, r.lease_expires_at
  ), j as (
    update canon.jobs j set heartbeat_at = now(), lease_expires_at = r.lease_expires_at
      from r where j.id = r.job_id and j.trace_id = r.trace_id and j.status = 'running'
    returning j.id
  )
  select r.id from r;
end $$;
