-- canon definitions | class: core | requires: runs
-- status_derived: the rules, the statement-level triggers that note the entities a
-- transaction touched, the flush at commit, and the set-based recomputation that
-- `canon status verify` compares against.

-- The rules, first match wins:
--   failed       a job is dead: status failed and not superseded by a later job of the same
--                type for the same entity (`canon jobs retry` creates such a later job)
--   in_progress  a job is running
--   blocked      a queued job cannot be claimed: held (hold_reason set) or its type paused
--   pending      jobs are queued but nothing has run for the entity yet, or it has no job
--   in_progress  a job is queued and something has already run
--   completed    nothing queued or running, at least one job succeeded, none dead
--   blocked      otherwise: every job was cancelled; nothing will move the entity on its own
-- An open circuit breaker does not make an entity blocked: it closes by itself after its
-- cooldown, and recomputing every entity of a type inside the worker transaction that opens
-- the breaker would take row locks in an order that deadlocks against other workers.
create or replace function canon.derive_status(p_queued integer, p_running integer, p_blocked integer, p_succeeded integer,
                                    p_dead integer, p_jobs integer, p_runs integer)
returns text language sql immutable parallel safe as $$
  select case when p_dead > 0 then 'failed'
              when p_running > 0 then 'in_progress'
              when p_blocked > 0 then 'blocked'
              when p_queued > 0 and p_runs = 0 then 'pending'
              when p_queued > 0 then 'in_progress'
              when p_succeeded > 0 then 'completed'
              when p_jobs = 0 then 'pending'
              else 'blocked' end
$$;

-- health_score = succeeded runs / (succeeded + failed runs), 0 when no run has finished;
-- released (cancelled) runs are not a verdict on the handler and are left out.
create or replace function canon.derive_health(p_succeeded integer, p_failed integer)
returns numeric language sql immutable parallel safe as $$
  select coalesce(round(p_succeeded::numeric / nullif(p_succeeded + p_failed, 0), 4), 0)
$$;

-- What `canon prune` removed from each entity it reached (migrations/repeatable/retention.sql),
-- as the status rules count it: its jobs and runs by status, and its dead jobs unless a later
-- job of the same type supersedes them (as for live jobs). Both status paths below add it.
create or replace view canon.entity_pruned_counts as
select pp.entity_id, pp.jobs_succeeded, pp.jobs_failed, pp.jobs_cancelled,
       pp.runs_succeeded, pp.runs_failed, pp.runs_cancelled,
       (select count(*) from unnest(pp.dead_types) t
         where not exists (select 1 from canon.jobs l where l.entity_id = pp.entity_id and l.type = t))::int as dead
  from canon.entity_pruned pp;
revoke all on table canon.entity_pruned_counts from public;
grant select on table canon.entity_pruned_counts to canon_reader;

-- The counters of the given entities, computed from their jobs and runs and the tally of those
-- `canon prune` removed (index scans only).
-- Triggers call it for the few entities a statement touched.
create or replace function canon.entity_status_compute(p_ids text[])
returns table (entity_id text, jobs_total integer, jobs_queued integer, jobs_running integer, jobs_blocked integer,
               jobs_succeeded integer, jobs_failed integer, jobs_cancelled integer, jobs_dead integer,
               runs_total integer, runs_running integer, runs_succeeded integer, runs_failed integer,
               runs_cancelled integer, status text, health_score numeric)
language sql stable as $$
  with ids as (select distinct unnest(p_ids) as id),
  j as (
    select jj.entity_id,
           count(*)::int as total,
           count(*) filter (where jj.status = 'queued')::int as queued,
           count(*) filter (where jj.status = 'running')::int as running,
           count(*) filter (where jj.status = 'queued' and (jj.hold_reason is not null or t.paused))::int as blocked,
           count(*) filter (where jj.status = 'succeeded')::int as succeeded,
           count(*) filter (where jj.status = 'failed')::int as failed,
           count(*) filter (where jj.status = 'cancelled')::int as cancelled,
           count(*) filter (where jj.status = 'failed' and not exists (
             select 1 from canon.jobs later
              where later.entity_id = jj.entity_id and later.type = jj.type and later.id > jj.id))::int as dead
      from canon.jobs jj left join canon.job_types t on t.name = jj.type
     where jj.entity_id = any (p_ids)
     group by jj.entity_id
  ), r as (
    select rr.entity_id,
           count(*)::int as total,
           count(*) filter (where rr.status = 'running')::int as running,
           count(*) filter (where rr.status = 'succeeded')::int as succeeded,
           count(*) filter (where rr.status = 'failed')::int as failed,
           count(*) filter (where rr.status = 'cancelled')::int as cancelled
      from canon.job_runs rr
     where rr.entity_id = any (p_ids)
     group by rr.entity_id
  ), p as (
    select pp.* from canon.entity_pruned_counts pp where pp.entity_id = any (p_ids)
  )
  select ids.id,
         c.jobs_total, c.jobs_queued, c.jobs_running, c.jobs_blocked, c.jobs_succeeded, c.jobs_failed,
         c.jobs_cancelled, c.jobs_dead, c.runs_total, c.runs_running, c.runs_succeeded, c.runs_failed, c.runs_cancelled,
         canon.derive_status(c.jobs_queued, c.jobs_running, c.jobs_blocked, c.jobs_succeeded, c.jobs_dead,
                             c.jobs_total, c.runs_total),
         canon.derive_health(c.runs_succeeded, c.runs_failed)
    from ids left join j on j.entity_id = ids.id left join r on r.entity_id = ids.id
    left join p on p.entity_id = ids.id
   cross join lateral (
     select coalesce(j.total, 0) + coalesce(p.jobs_succeeded + p.jobs_failed + p.jobs_cancelled, 0) as jobs_total,
            coalesce(j.queued, 0) as jobs_queued, coalesce(j.running, 0) as jobs_running,
            coalesce(j.blocked, 0) as jobs_blocked,
            coalesce(j.succeeded, 0) + coalesce(p.jobs_succeeded, 0) as jobs_succeeded,
            coalesce(j.failed, 0) + coalesce(p.jobs_failed, 0) as jobs_failed,
            coalesce(j.cancelled, 0) + coalesce(p.jobs_cancelled, 0) as jobs_cancelled,
            coalesce(j.dead, 0) + coalesce(p.dead, 0) as jobs_dead,
            coalesce(r.total, 0) + coalesce(p.runs_succeeded + p.runs_failed + p.runs_cancelled, 0) as runs_total,
            coalesce(r.running, 0) as runs_running,
            coalesce(r.succeeded, 0) + coalesce(p.runs_succeeded, 0) as runs_succeeded,
            coalesce(r.failed, 0) + coalesce(p.runs_failed, 0) as runs_failed,
            coalesce(r.cancelled, 0) + coalesce(p.runs_cancelled, 0) as runs_cancelled) c
   order by ids.id
$$;

-- Brings the status rows of the given entities up to date. Two statements on purpose: the
-- rows are locked first, in entity order, and the counts are read by a second statement whose
-- snapshot is taken after the locks are held, so it sees every change committed by whoever
-- held them before. Whoever updates an entity's row last has therefore counted everything
-- committed before it: the status cannot drift, whatever the interleaving (READ COMMITTED, as
-- canon's writers run). The jobs table lock (row exclusive, which every writer of jobs holds
-- anyway) keeps the invariant that the pause trigger below relies on: nobody holds a status
-- row lock without it.
-- Every query here looks up a handful of entities by index, so the plan is generic and uses
-- the indexes: custom plans would re-plan the inlined counting query (milliseconds) on every
-- call, and a generic plan chosen while the tables were small would keep scanning them as
-- they grow (within one long transaction nothing re-plans it). JIT is off, as in
-- canon.claim_runs: a disabled plan node is priced past jit_above_cost.
create or replace function canon.refresh_entity_status(p_ids text[]) returns void
language plpgsql
security definer
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set jit = off
set search_path = pg_catalog, canon, pg_temp
as $$
begin
  if p_ids is null or cardinality(p_ids) = 0 then
    return;
  end if;
  lock table canon.jobs in row exclusive mode;
  perform 1 from canon.entity_status s where s.entity_id = any (p_ids) order by s.entity_id for update;
  update canon.entity_status s
     set jobs_total = c.jobs_total, jobs_queued = c.jobs_queued, jobs_running = c.jobs_running,
         jobs_blocked = c.jobs_blocked, jobs_succeeded = c.jobs_succeeded, jobs_failed = c.jobs_failed,
         jobs_cancelled = c.jobs_cancelled, jobs_dead = c.jobs_dead, runs_total = c.runs_total,
         runs_running = c.runs_running, runs_succeeded = c.runs_succeeded, runs_failed = c.runs_failed,
         runs_cancelled = c.runs_cancelled, status = c.status, health_score = c.health_score, updated_at = now()
    from canon.entity_status_compute(p_ids) c
   where s.entity_id = c.entity_id;
end $$;
revoke all on function canon.refresh_entity_status(text[]) from public;
grant execute on function canon.refresh_entity_status(text[]) to canon_operator;

-- Every entity gets its status row when it is created (by its first event or first job).
create or replace function canon.status_on_entity() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
begin
  insert into canon.entity_status (entity_id, status) values (new.id, 'pending') on conflict do nothing;
  return null;
end $$;
revoke all on function canon.status_on_entity() from public;
drop trigger if exists canon_status_on_entity on canon.entities;
create trigger canon_status_on_entity after insert on canon.entities
  for each row execute function canon.status_on_entity();

-- Notes entities whose status must be refreshed when the transaction commits. The first mark
-- of a transaction also inserts its one row in canon.status_flush_due, whose deferred
-- constraint trigger runs canon.status_flush at commit: once per transaction, however many
-- entities it touched. The setting canon.status_pending names the transaction that has queued
-- its flush. It is set at session level because a transaction-local setting made inside a
-- function with SET clauses (these run as their owner with a pinned search_path) is undone
-- when the function returns; a rollback undoes it as well, and the xid keeps transactions
-- apart. Under SET CONSTRAINTS ALL IMMEDIATE the flush fires at the end of the marker's
-- insert, clears the setting, and the next mark queues it again.
create or replace function canon.mark_status_dirty(p_ids text[]) returns void
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
begin
  if cardinality(p_ids) > 0 then
    insert into canon.status_dirty (entity_id) select distinct x from unnest(p_ids) x where x is not null
    on conflict do nothing;
    if current_setting('canon.status_pending', true) is distinct from pg_current_xact_id()::text then
      -- set before the insert: under SET CONSTRAINTS ALL IMMEDIATE the flush fires at its end
      perform set_config('canon.status_pending', pg_current_xact_id()::text, false);
      insert into canon.status_flush_due default values on conflict do nothing;
    end if;
  end if;
end $$;
revoke all on function canon.mark_status_dirty(text[]) from public;

create or replace function canon.status_flush() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
declare
  v_ids text[];
begin
  if current_setting('canon.status_pending', true) is distinct from pg_current_xact_id()::text then
    return null;
  end if;
  perform set_config('canon.status_pending', '', false);
  delete from canon.status_flush_due where xid = pg_current_xact_id();
  with d as (delete from canon.status_dirty where xid = pg_current_xact_id() returning entity_id)
  select array_agg(entity_id) into v_ids from d;
  perform canon.refresh_entity_status(v_ids);
  return null;
end $$;
revoke all on function canon.status_flush() from public;
drop trigger if exists canon_status_flush on canon.status_flush_due;
create constraint trigger canon_status_flush after insert on canon.status_flush_due
  deferrable initially deferred for each row execute function canon.status_flush();

create or replace function canon.status_on_rows_insert() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
begin
  perform canon.mark_status_dirty(array(select entity_id from new_rows));
  return null;
end $$;
revoke all on function canon.status_on_rows_insert() from public;
drop trigger if exists canon_status_on_jobs_insert on canon.jobs;
create trigger canon_status_on_jobs_insert after insert on canon.jobs
  referencing new table as new_rows for each statement execute function canon.status_on_rows_insert();
drop trigger if exists canon_status_on_runs_insert on canon.job_runs;
create trigger canon_status_on_runs_insert after insert on canon.job_runs
  referencing new table as new_rows for each statement execute function canon.status_on_rows_insert();

-- Updates that change nothing the status reads (heartbeats) are filtered out. One function
-- for jobs and runs; hold_reason exists only on jobs, hence the jsonb lookup (reached only
-- when status, entity and type are all unchanged).
create or replace function canon.status_on_rows_update() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
begin
  perform canon.mark_status_dirty(array(
    select x.entity_id
      from new_rows n join old_rows o on o.id = n.id
     cross join lateral (values (n.entity_id), (o.entity_id)) as x(entity_id)
     where n.status is distinct from o.status or n.entity_id <> o.entity_id or n.type <> o.type
        or to_jsonb(n) -> 'hold_reason' is distinct from to_jsonb(o) -> 'hold_reason'));
  return null;
end $$;
revoke all on function canon.status_on_rows_update() from public;
drop trigger if exists canon_status_on_jobs_update on canon.jobs;
create trigger canon_status_on_jobs_update after update on canon.jobs
  referencing old table as old_rows new table as new_rows for each statement execute function canon.status_on_rows_update();
drop trigger if exists canon_status_on_runs_update on canon.job_runs;
create trigger canon_status_on_runs_update after update on canon.job_runs
  referencing old table as old_rows new table as new_rows for each statement execute function canon.status_on_rows_update();

create or replace function canon.status_on_rows_delete() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
begin
  perform canon.mark_status_dirty(array(select entity_id from old_rows));
  return null;
end $$;
revoke all on function canon.status_on_rows_delete() from public;
drop trigger if exists canon_status_on_jobs_delete on canon.jobs;
create trigger canon_status_on_jobs_delete after delete on canon.jobs
  referencing old table as old_rows for each statement execute function canon.status_on_rows_delete();
drop trigger if exists canon_status_on_runs_delete on canon.job_runs;
create trigger canon_status_on_runs_delete after delete on canon.job_runs
  referencing old table as old_rows for each statement execute function canon.status_on_rows_delete();

-- Pausing or resuming a type changes "blocked" for every entity with a queued job of that
-- type; those are refreshed at once, inside the pausing statement. The share lock on jobs
-- waits for every transaction that is writing jobs (and so may compute a status with the old
-- paused value) to finish, and holds new ones back until this transaction commits, so no
-- entity is computed with a stale paused value. It cannot deadlock with them: a status row is
-- only ever locked by a holder of row exclusive on jobs.
create or replace function canon.status_on_pause() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
begin
  lock table canon.jobs in share mode;
  perform canon.refresh_entity_status(array(
    select distinct j.entity_id from canon.jobs j where j.type = new.name and j.status = 'queued'));
  return null;
end $$;
revoke all on function canon.status_on_pause() from public;
drop trigger if exists canon_status_on_pause on canon.job_types;
create trigger canon_status_on_pause after update of paused on canon.job_types
  for each row when (old.paused is distinct from new.paused) execute function canon.status_on_pause();

-- The same rules computed for every entity at once, independently of the incremental path
-- (one scan of jobs and runs with GROUP BY, plus what `canon prune` removed): what
-- `canon status verify` compares against.
create or replace view canon.entity_status_recomputed as
with j as (
  select jj.entity_id,
         count(*)::int as total,
         count(*) filter (where jj.status = 'queued')::int as queued,
         count(*) filter (where jj.status = 'running')::int as running,
         count(*) filter (where jj.status = 'queued' and (jj.hold_reason is not null or t.paused))::int as blocked,
         count(*) filter (where jj.status = 'succeeded')::int as succeeded,
         count(*) filter (where jj.status = 'failed')::int as failed,
         count(*) filter (where jj.status = 'cancelled')::int as cancelled,
         count(*) filter (where jj.status = 'failed' and jj.id = jj.latest_of_type)::int as dead
    from (select *, max(id) over (partition by entity_id, type) as latest_of_type from canon.jobs) jj
    left join canon.job_types t on t.name = jj.type
   group by jj.entity_id
), r as (
  select rr.entity_id,
         count(*)::int as total,
         count(*) filter (where rr.status = 'running')::int as running,
         count(*) filter (where rr.status = 'succeeded')::int as succeeded,
         count(*) filter (where rr.status = 'failed')::int as failed,
         count(*) filter (where rr.status = 'cancelled')::int as cancelled
    from canon.job_runs rr
   group by rr.entity_id
), p as (
  select * from canon.entity_pruned_counts
), c as (
  select e.id as entity_id,
         coalesce(j.total, 0) + coalesce(p.jobs_succeeded + p.jobs_failed + p.jobs_cancelled, 0) as jobs_total,
         coalesce(j.queued, 0) as jobs_queued,
         coalesce(j.running, 0) as jobs_running, coalesce(j.blocked, 0) as jobs_blocked,
         coalesce(j.succeeded, 0) + coalesce(p.jobs_succeeded, 0) as jobs_succeeded,
         coalesce(j.failed, 0) + coalesce(p.jobs_failed, 0) as jobs_failed,
         coalesce(j.cancelled, 0) + coalesce(p.jobs_cancelled, 0) as jobs_cancelled,
         coalesce(j.dead, 0) + coalesce(p.dead, 0) as jobs_dead,
         coalesce(r.total, 0) + coalesce(p.runs_succeeded + p.runs_failed + p.runs_cancelled, 0) as runs_total,
         coalesce(r.running, 0) as runs_running,
         coalesce(r.succeeded, 0) + coalesce(p.runs_succeeded, 0) as runs_succeeded,
         coalesce(r.failed, 0) + coalesce(p.runs_failed, 0) as runs_failed,
         coalesce(r.cancelled, 0) + coalesce(p.runs_cancelled, 0) as runs_cancelled
    from canon.entities e left join j on j.entity_id = e.id left join r on r.entity_id = e.id
    left join p on p.entity_id = e.id
)
select c.*,
       canon.derive_status(c.jobs_queued, c.jobs_running, c.jobs_blocked, c.jobs_succeeded, c.jobs_dead,
                           c.jobs_total, c.runs_total) as status,
       canon.derive_health(c.runs_succeeded, c.runs_failed) as health_score
  from c;
revoke all on table canon.entity_status_recomputed from public;
grant select on table canon.entity_status_recomputed to canon_reader;
