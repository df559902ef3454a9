-- canon migration | class: core | breaking: no
-- Proof: status_derived kept current in the same transaction as every change to an entity's
-- jobs and runs, the set-based recomputation that `canon status verify` compares it with, and
-- the register of edits to the ledger that were refused (or that bypassed the triggers), which
-- survives the rollback of the refused statement.

-- ─── status_derived ─────────────────────────────────────────────────────────────────────
-- The rules, first match wins (docs/ARCHITECTURE.md "Proof" has the table):
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
-- health_score = succeeded runs / (succeeded + failed runs), 0 when no run has finished;
-- released (cancelled) runs are not a verdict on the handler and are left out.
alter table canon.entity_status
  add column jobs_queued    integer not null default 0,
  add column jobs_running   integer not null default 0,
  add column jobs_blocked   integer not null default 0,
  add column jobs_cancelled integer not null default 0,
  add column jobs_dead      integer not null default 0,
  add column runs_running   integer not null default 0,
  add column runs_cancelled integer not null default 0;

-- The status row's foreign key to entities made every status update take a KEY SHARE lock on
-- the entity row, which a concurrent append holds FOR UPDATE until it commits: a lock cycle
-- with that append's own status update. Entities are never deleted (the ledger is
-- append-only) and `canon status verify` reports a status row without an entity.
alter table canon.entity_status drop constraint entity_status_entity_id_fkey;

create function canon.derive_status(p_queued integer, p_running integer, p_blocked integer, p_succeeded integer,
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

create function canon.derive_health(p_succeeded integer, p_failed integer)
returns numeric language sql immutable parallel safe as $$
  select coalesce(round(p_succeeded::numeric / nullif(p_succeeded + p_failed, 0), 4), 0)
$$;

-- Runs per entity are counted by entity, which no index of 0001 serves.
create index job_runs_entity_idx on canon.job_runs (entity_id);
-- The jobs of one type and entity, newest first: "is this failed job superseded?"
create index jobs_entity_type_idx on canon.jobs (entity_id, type, id);

-- The counters of the given entities, computed from their jobs and runs (index scans only).
-- Triggers call it for the few entities a statement touched.
create function canon.entity_status_compute(p_ids text[])
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
  )
  select ids.id,
         coalesce(j.total, 0), coalesce(j.queued, 0), coalesce(j.running, 0), coalesce(j.blocked, 0),
         coalesce(j.succeeded, 0), coalesce(j.failed, 0), coalesce(j.cancelled, 0), coalesce(j.dead, 0),
         coalesce(r.total, 0), coalesce(r.running, 0), coalesce(r.succeeded, 0), coalesce(r.failed, 0),
         coalesce(r.cancelled, 0),
         canon.derive_status(coalesce(j.queued, 0), coalesce(j.running, 0), coalesce(j.blocked, 0),
                             coalesce(j.succeeded, 0), coalesce(j.dead, 0), coalesce(j.total, 0), coalesce(r.total, 0)),
         canon.derive_health(coalesce(r.succeeded, 0), coalesce(r.failed, 0))
    from ids left join j on j.entity_id = ids.id left join r on r.entity_id = ids.id
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
-- they grow (within one long transaction nothing re-plans it).
create function canon.refresh_entity_status(p_ids text[]) returns void
language plpgsql set plan_cache_mode = force_generic_plan set enable_seqscan = off as $$
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

-- Every entity gets its status row when it is created (by its first event or first job).
create function canon.status_on_entity() returns trigger
language plpgsql as $$
begin
  insert into canon.entity_status (entity_id, status) values (new.id, 'pending') on conflict do nothing;
  return null;
end $$;
create trigger canon_status_on_entity after insert on canon.entities
  for each row execute function canon.status_on_entity();

-- When: at commit, once per transaction. Statement-level triggers (transition tables, so a
-- claim of 100 jobs is one entry) note which entities a statement touched in status_dirty;
-- a deferred constraint trigger on that table refreshes them all, in entity order, when the
-- transaction commits. Refreshing mid-transaction instead would hold status row locks while
-- the transaction goes on to wait for others (an append waiting on a claimer's unique-index
-- entry while the claimer waits for the appender's status row: a deadlock the tests hit).
-- At commit a transaction waits only for other transactions that are themselves committing
-- and locking status rows in the same order, so no cycle can form. The table is unlogged and
-- each transaction deletes its own rows, so it stays empty.
create unlogged table canon.status_dirty (
  xid       xid8 not null default pg_current_xact_id(),
  entity_id text not null,
  primary key (xid, entity_id)
);

-- The setting canon.status_pending names the transaction whose rows wait: every inserted row
-- queues a firing of the flush, and all but the first must return at once (scanning the
-- table's index past the rows the first one deleted would make a large transaction
-- quadratic). It is set at session level because a transaction-local setting made inside a
-- function with SET clauses (these run as their owner with a pinned search_path) is undone
-- when the function returns; a rollback undoes it as well, and the xid keeps transactions apart.
create function canon.mark_status_dirty(p_ids text[]) returns void
language plpgsql as $$
begin
  if cardinality(p_ids) > 0 then
    -- set before the insert: under SET CONSTRAINTS ALL IMMEDIATE the flush fires at its end
    perform set_config('canon.status_pending', pg_current_xact_id()::text, false);
    insert into canon.status_dirty (entity_id) select distinct x from unnest(p_ids) x where x is not null
    on conflict do nothing;
  end if;
end $$;

create function canon.status_flush() returns trigger
language plpgsql as $$
declare
  v_ids text[];
begin
  if current_setting('canon.status_pending', true) is distinct from pg_current_xact_id()::text then
    return null;
  end if;
  perform set_config('canon.status_pending', '', false);
  with d as (delete from canon.status_dirty where xid = pg_current_xact_id() returning entity_id)
  select array_agg(entity_id) into v_ids from d;
  perform canon.refresh_entity_status(v_ids);
  return null;
end $$;
create constraint trigger canon_status_flush after insert on canon.status_dirty
  deferrable initially deferred for each row execute function canon.status_flush();

create function canon.status_on_rows_insert() returns trigger
language plpgsql as $$
begin
  perform canon.mark_status_dirty(array(select entity_id from new_rows));
  return null;
end $$;
create trigger canon_status_on_jobs_insert after insert on canon.jobs
  referencing new table as new_rows for each statement execute function canon.status_on_rows_insert();

-- Updates that change nothing the status reads (heartbeats) are filtered out. One function
-- for jobs and runs; hold_reason exists only on jobs, hence the jsonb lookup (reached only
-- when status, entity and type are all unchanged).
create function canon.status_on_rows_update() returns trigger
language plpgsql as $$
begin
  perform canon.mark_status_dirty(array(
    select x.entity_id
      from new_rows n join old_rows o on o.id = n.id
     cross join lateral (values (n.entity_id), (o.entity_id)) as x(entity_id)
     where n.status is distinct from o.status or n.entity_id <> o.entity_id or n.type <> o.type
        or to_jsonb(n) -> 'hold_reason' is distinct from to_jsonb(o) -> 'hold_reason'));
  return null;
end $$;
create trigger canon_status_on_jobs_update after update on canon.jobs
  referencing old table as old_rows new table as new_rows for each statement execute function canon.status_on_rows_update();

create function canon.status_on_rows_delete() returns trigger
language plpgsql as $$
begin
  perform canon.mark_status_dirty(array(select entity_id from old_rows));
  return null;
end $$;
create trigger canon_status_on_jobs_delete after delete on canon.jobs
  referencing old table as old_rows for each statement execute function canon.status_on_rows_delete();

create trigger canon_status_on_runs_insert after insert on canon.job_runs
  referencing new table as new_rows for each statement execute function canon.status_on_rows_insert();

create trigger canon_status_on_runs_update after update on canon.job_runs
  referencing old table as old_rows new table as new_rows for each statement execute function canon.status_on_rows_update();
create trigger canon_status_on_runs_delete after delete on canon.job_runs
  referencing old table as old_rows for each statement execute function canon.status_on_rows_delete();

-- Whoever fires these triggers (an operator's cancel, a worker's claim) may not be allowed to
-- write canon.status_dirty or canon.entity_status: the status path runs as the owner, with
-- search_path pinned and no EXECUTE for PUBLIC (trigger functions need none to fire).
do $$
declare
  f regprocedure;
begin
  for f in
    select p.oid::regprocedure from pg_proc p
     where p.pronamespace = 'canon'::regnamespace
       and p.proname = any (array['mark_status_dirty', 'status_flush', 'status_on_entity', 'status_on_rows_insert',
                                  'status_on_rows_update', 'status_on_rows_delete', 'refresh_entity_status'])
  loop
    execute format('alter function %s security definer set search_path = pg_catalog, canon, pg_temp', f);
    execute format('revoke execute on function %s from public', f);
  end loop;
end $$;

-- Pausing or resuming a type changes "blocked" for every entity with a queued job of that
-- type; those are refreshed at once, inside the pausing statement. The share lock on jobs
-- waits for every transaction that is writing jobs (and so may compute a status with the old
-- paused value) to finish, and holds new ones back until this transaction commits, so no
-- entity is computed with a stale paused value. It cannot deadlock with them: a status row is
-- only ever locked by a holder of row exclusive on jobs.
create function canon.status_on_pause() returns trigger
language plpgsql as $$
begin
  lock table canon.jobs in share mode;
  perform canon.refresh_entity_status(array(
    select distinct j.entity_id from canon.jobs j where j.type = new.name and j.status = 'queued'));
  return null;
end $$;
create trigger canon_status_on_pause after update of paused on canon.job_types
  for each row when (old.paused is distinct from new.paused) execute function canon.status_on_pause();
alter function canon.status_on_pause() security definer set search_path = pg_catalog, canon, pg_temp;
revoke execute on function canon.status_on_pause() from public;

-- The same rules computed for every entity at once, independently of the incremental path
-- (one scan of jobs and runs with GROUP BY): what `canon status verify` compares against.
create view canon.entity_status_recomputed as
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
), c as (
  select e.id as entity_id,
         coalesce(j.total, 0) as jobs_total, coalesce(j.queued, 0) as jobs_queued,
         coalesce(j.running, 0) as jobs_running, coalesce(j.blocked, 0) as jobs_blocked,
         coalesce(j.succeeded, 0) as jobs_succeeded, coalesce(j.failed, 0) as jobs_failed,
         coalesce(j.cancelled, 0) as jobs_cancelled, coalesce(j.dead, 0) as jobs_dead,
         coalesce(r.total, 0) as runs_total, coalesce(r.running, 0) as runs_running,
         coalesce(r.succeeded, 0) as runs_succeeded, coalesce(r.failed, 0) as runs_failed,
         coalesce(r.cancelled, 0) as runs_cancelled
    from canon.entities e left join j on j.entity_id = e.id left join r on r.entity_id = e.id
)
select c.*,
       canon.derive_status(c.jobs_queued, c.jobs_running, c.jobs_blocked, c.jobs_succeeded, c.jobs_dead,
                           c.jobs_total, c.runs_total) as status,
       canon.derive_health(c.runs_succeeded, c.runs_failed) as health_score
  from c;

-- Entities that existed before this migration get their rows now.
insert into canon.entity_status (entity_id, status, health_score, jobs_total, jobs_queued, jobs_running, jobs_blocked,
                                 jobs_succeeded, jobs_failed, jobs_cancelled, jobs_dead, runs_total, runs_running,
                                 runs_succeeded, runs_failed, runs_cancelled)
select entity_id, status, health_score, jobs_total, jobs_queued, jobs_running, jobs_blocked, jobs_succeeded, jobs_failed,
       jobs_cancelled, jobs_dead, runs_total, runs_running, runs_succeeded, runs_failed, runs_cancelled
  from canon.entity_status_recomputed
on conflict (entity_id) do update
   set status = excluded.status, health_score = excluded.health_score, jobs_total = excluded.jobs_total,
       jobs_queued = excluded.jobs_queued, jobs_running = excluded.jobs_running, jobs_blocked = excluded.jobs_blocked,
       jobs_succeeded = excluded.jobs_succeeded, jobs_failed = excluded.jobs_failed, jobs_cancelled = excluded.jobs_cancelled,
       jobs_dead = excluded.jobs_dead, runs_total = excluded.runs_total, runs_running = excluded.runs_running,
       runs_succeeded = excluded.runs_succeeded, runs_failed = excluded.runs_failed, runs_cancelled = excluded.runs_cancelled,
       updated_at = now();

-- ─── the register of edits to the ledger ────────────────────────────────────────────────
-- A refused UPDATE/DELETE/TRUNCATE raises and rolls back, taking any row it wrote with it.
-- Sequences are the one thing in Postgres that a rollback does not undo, so the register
-- lives in sequences: how many statements were refused, how many edits went through with
-- the triggers bypassed (session_replication_role = replica), and who made the last one,
-- when and how. A loopback connection (dblink) could keep a full table instead, but every
-- connection to canon's embedded server (and to most servers) needs a password, so the
-- database would have to store one; the server log gets the full statement instead (the
-- WARNING below). `canon audit attempts` and the alerts read the register.
create sequence canon.ledger_refused_total minvalue 0 start 1;
create sequence canon.ledger_bypass_total minvalue 0 start 1;
create sequence canon.ledger_last_edit_at_us minvalue 0 start 0;  -- microseconds since the epoch
create sequence canon.ledger_last_edit_role minvalue 0 start 0;   -- pg_roles oid of the acting role
create sequence canon.ledger_last_edit_op minvalue 0 start 0;     -- 1 update, 2 delete, 3 truncate; +10 bypassed
create sequence canon.ledger_last_edit_pid minvalue 0 start 0;    -- backend pid, to find it in the server log

-- Runs as its owner so that any role touching the ledger can advance the sequences.
create function canon.ledger_edit_attempt() returns trigger
language plpgsql security definer set search_path = pg_catalog, canon, pg_temp as $$
declare
  v_bypass boolean := current_setting('session_replication_role') = 'replica';
  -- the role acting: SET ROLE's if one is set (inside this function current_user is the owner)
  v_role text := coalesce(nullif(current_setting('role'), 'none'), session_user);
  v_n bigint;
begin
  if v_bypass then
    v_n := nextval('canon.ledger_bypass_total');
  else
    v_n := nextval('canon.ledger_refused_total');
  end if;
  perform setval('canon.ledger_last_edit_at_us', (extract(epoch from clock_timestamp()) * 1000000)::bigint);
  perform setval('canon.ledger_last_edit_role', coalesce((select oid::bigint from pg_roles where rolname = v_role), 0));
  perform setval('canon.ledger_last_edit_op', (case tg_op when 'UPDATE' then 1 when 'DELETE' then 2 else 3 end)
                                              + case when v_bypass then 10 else 0 end);
  perform setval('canon.ledger_last_edit_pid', pg_backend_pid());
  raise warning 'canon: % on the ledger by % (pid %) was recorded as %: %',
    tg_op, v_role, pg_backend_pid(),
    case when v_bypass then format('bypass #%s (triggers disabled; run `canon audit verify`)', v_n)
         else format('refused attempt #%s', v_n) end,
    left(regexp_replace(current_query(), '\s+', ' ', 'g'), 500);
  return null;
end $$;

-- Statement-level and BEFORE, so it fires even when the statement matches no row and before
-- the immutability trigger refuses the first one. ENABLE ALWAYS: it also fires when a
-- superuser switches session_replication_role to replica to get past the refusal.
create trigger canon_events_attempt before update or delete on canon.events
  for each statement execute function canon.ledger_edit_attempt();
create trigger canon_events_attempt_truncate before truncate on canon.events
  for each statement execute function canon.ledger_edit_attempt();
alter table canon.events enable always trigger canon_events_attempt;
alter table canon.events enable always trigger canon_events_attempt_truncate;

create function canon.ledger_edit_register()
returns table (refused_total bigint, bypass_total bigint, last_at timestamptz, last_role text, last_op text,
               last_bypass boolean, last_pid integer)
language sql stable security definer set search_path = pg_catalog, canon, pg_temp as $$
  select (select case when is_called then last_value else 0 end from canon.ledger_refused_total),
         (select case when is_called then last_value else 0 end from canon.ledger_bypass_total),
         (select case when is_called then to_timestamp(last_value / 1000000.0) end from canon.ledger_last_edit_at_us),
         (select case when s.is_called then coalesce(r.rolname::text, 'role oid ' || s.last_value) end
            from canon.ledger_last_edit_role s left join pg_roles r on r.oid = s.last_value::oid),
         (select case when is_called then (array['UPDATE', 'DELETE', 'TRUNCATE'])[(last_value % 10)::int] end from canon.ledger_last_edit_op),
         (select case when is_called then last_value >= 10 end from canon.ledger_last_edit_op),
         (select case when is_called then last_value::int end from canon.ledger_last_edit_pid)
$$;
revoke execute on function canon.ledger_edit_attempt() from public;
revoke execute on function canon.ledger_edit_register() from public;

-- The FacturaXpress guide's query runs as written: `SELECT * FROM vault_tampering_attempts
-- ORDER BY created_at DESC LIMIT 10` shows the last recorded attempt and the totals (the
-- register keeps the last one; the server log keeps every statement).
create view public.vault_tampering_attempts as
select r.last_at as created_at, r.last_role as user_id, r.last_op as operation, r.last_bypass as triggers_bypassed,
       r.last_pid as backend_pid, r.refused_total, r.bypass_total, 'canon.events'::text as table_name
  from canon.ledger_edit_register() r
 where r.last_at is not null;
