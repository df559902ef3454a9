-- canon migration | class: core | breaking: no
-- A released run (graceful shutdown) used to hand its attempt back by decrementing
-- jobs.attempts; the next claim then reused that attempt number and collided with the
-- unique (job_id, attempt) of job_runs, blocking the lane. A release now keeps the attempt
-- count — every run keeps its own number and trace id — and extends the job's budget by one
-- instead, so the release still costs the job nothing.
-- CREATE OR REPLACE resets SECURITY DEFINER and SET clauses, so the function's privilege
-- settings (least privilege, 0010) are captured first and put back afterwards.
create temporary table _canon_release_attrs on commit drop as
  select p.prosecdef, p.proconfig from pg_proc p
   where p.oid = 'canon.release_run(bigint, text, text)'::regprocedure;

create or replace function canon.release_run(p_run_id bigint, p_worker_id text, p_reason text default 'released')
returns boolean language plpgsql as $$
declare
  l record;
begin
  select * into l from canon.lock_run(p_run_id, p_worker_id);
  if not l.owned then
    return false;
  end if;
  update canon.job_runs set status = 'cancelled', finished_at = now(), reason = p_reason where id = p_run_id;
  update canon.jobs set status = 'queued', max_attempts = max_attempts + 1, locked_by = null, locked_at = null,
                        heartbeat_at = null, lease_expires_at = null, updated_at = now()
   where id = (l.j).id;
  return true;
end $$;

do $$
declare
  a record;
  cfg text;
begin
  select * into a from _canon_release_attrs;
  if a.prosecdef then
    execute 'alter function canon.release_run(bigint, text, text) security definer';
  end if;
  foreach cfg in array coalesce(a.proconfig, '{}'::text[]) loop
    -- the value as stored (a list such as search_path unquoted: quoting it whole would make
    -- "pg_catalog, canon, pg_temp" one schema name)
    execute format('alter function canon.release_run(bigint, text, text) set %s = %s',
                   split_part(cfg, '=', 1), substr(cfg, length(split_part(cfg, '=', 1)) + 2));
  end loop;
end $$;
