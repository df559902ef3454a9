-- canon definitions | class: core | requires: none
-- The ledger's functions and triggers: settings lookup, the event hash, the append that
-- extends an entity's hash chain under its row lock, the refusal of edits and their register.

create or replace function canon.setting(p_key text) returns text
language sql stable as $$ select value from canon.settings where key = p_key $$;

-- The hash of one event: SHA-256 over the previous hash and every field a reader relies on,
-- separated by a unit separator so that no two field lists hash alike. jsonb's text form is
-- canonical (keys sorted, whitespace normalised), so equal payloads hash equally anywhere.
-- Declared STABLE, not IMMUTABLE, so that the planner inlines its body into the statements
-- that call it (the chain trigger, `canon audit verify`, the provenance debugger): its body
-- calls concat_ws, to_char and convert_to, which are STABLE, and a SQL function declared more
-- immutable than its body is never inlined. Nothing uses it in an index or a generated column,
-- where IMMUTABLE would be required. No SECURITY DEFINER and no SET clause: either would
-- prevent the inlining too.
create or replace function canon.event_hash(
  p_prev bytea, p_entity_id text, p_seq integer, p_kind text, p_payload jsonb,
  p_correlation_id text, p_causation_id bigint, p_trace_id text, p_actor text, p_created_at timestamptz
) returns bytea language sql stable parallel safe as $$
  select sha256(coalesce(p_prev, '\x'::bytea) || convert_to(concat_ws(chr(31),
    p_entity_id, p_seq::text, p_kind, p_payload::text, p_correlation_id,
    coalesce(p_causation_id::text, ''), coalesce(p_trace_id, ''), p_actor,
    to_char(p_created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')), 'UTF8'))
$$;

-- Every insert takes the entity's row lock, so seq is gap-free and the chain is linear even
-- with many concurrent writers. A caller that names a seq (optimistic concurrency) and is
-- not next gets CN001 instead of a silent reorder.
create or replace function canon.events_before_insert() returns trigger
language plpgsql
set plan_cache_mode = auto
as $$
declare
  v_head_seq integer;
  v_head_hash bytea;
  v_entity_created timestamptz;
  v_now timestamptz;
begin
  select head_seq, head_hash, created_at into v_head_seq, v_head_hash, v_entity_created
    from canon.entities where id = new.entity_id for update;
  if not found then
    insert into canon.entities (id) values (new.entity_id) on conflict do nothing;
    select head_seq, head_hash, created_at into v_head_seq, v_head_hash, v_entity_created
      from canon.entities where id = new.entity_id for update;
  end if;
  if new.seq is null then
    new.seq := v_head_seq + 1;
  elsif new.seq <> v_head_seq + 1 then
    raise exception using errcode = 'CN001',
      message = format('stale expected seq for entity %s: expected %s, but the entity is at seq %s',
                       new.entity_id, new.seq - 1, v_head_seq),
      hint = 'read the entity again and retry with its current seq';
  end if;
  -- The row was routed to its month's partition by created_at's default before this trigger
  -- ran; the clock time under the lock replaces it unless it has crossed into the next month
  -- (microseconds at midnight), where the row could no longer stay in its partition.
  v_now := clock_timestamp();
  if date_trunc('month', v_now at time zone 'UTC') = date_trunc('month', new.created_at at time zone 'UTC') then
    new.created_at := v_now;
  end if;
  -- The history reads (claim_runs_with_history, begin_decisions) skip the months before
  -- canon.history_floor(entity), the entity's creation less a day; an event older than that
  -- would be invisible to them, so it is refused. The clock cannot produce one: the entity's
  -- row is created at the start of the transaction of its first event, or earlier.
  if new.created_at < v_entity_created - interval '1 day' then
    raise exception using errcode = 'CN005',
      message = format('event of %s at %s is older than its entity (created %s)', new.entity_id, new.created_at, v_entity_created);
  end if;
  new.correlation_id := coalesce(nullif(new.correlation_id, ''), new.entity_id);
  new.actor := coalesce(nullif(new.actor, ''), session_user);
  new.prev_hash := v_head_hash;
  new.hash := canon.event_hash(new.prev_hash, new.entity_id, new.seq, new.kind, new.payload,
                               new.correlation_id, new.causation_id, new.trace_id, new.actor, new.created_at);
  update canon.entities set head_seq = new.seq, head_hash = new.hash where id = new.entity_id;
  return new;
end $$;
drop trigger if exists canon_events_chain on canon.events;
create trigger canon_events_chain before insert on canon.events
  for each row execute function canon.events_before_insert();

create or replace function canon.events_refuse_change() returns trigger
language plpgsql as $$
begin
  raise exception using errcode = 'CN002',
    message = format('canon.events is append-only: %s is refused', tg_op),
    hint = 'append a correcting event instead';
end $$;
drop trigger if exists canon_events_immutable on canon.events;
create trigger canon_events_immutable before update or delete on canon.events
  for each row execute function canon.events_refuse_change();
drop trigger if exists canon_events_no_truncate on canon.events;
create trigger canon_events_no_truncate before truncate on canon.events
  for each statement execute function canon.events_refuse_change();

create or replace function canon.append_event(
  p_entity_id text, p_kind text, p_payload jsonb default '{}'::jsonb, p_expected_seq integer default null,
  p_correlation_id text default null, p_causation_id bigint default null, p_trace_id text default null,
  p_actor text default null
) returns canon.events language sql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
  insert into canon.events (entity_id, seq, kind, payload, correlation_id, causation_id, trace_id, actor)
  values (p_entity_id, p_expected_seq + 1, p_kind, coalesce(p_payload, '{}'::jsonb),
          p_correlation_id, p_causation_id, p_trace_id, p_actor)
  returning *
$$;
revoke all on function canon.append_event(text, text, jsonb, integer, text, bigint, text, text) from public;
grant execute on function canon.append_event(text, text, jsonb, integer, text, bigint, text, text) to canon_worker, canon_operator;

-- Runs as its owner so that any role touching the ledger can advance the sequences.
create or replace function canon.ledger_edit_attempt() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
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
revoke all on function canon.ledger_edit_attempt() from public;
-- Statement-level and BEFORE, so it fires even when the statement matches no row and before
-- the immutability trigger refuses the first one. ENABLE ALWAYS: it also fires when a
-- superuser switches session_replication_role to replica to get past the refusal.
drop trigger if exists canon_events_attempt on canon.events;
create trigger canon_events_attempt before update or delete on canon.events
  for each statement execute function canon.ledger_edit_attempt();
alter table canon.events enable always trigger canon_events_attempt;
drop trigger if exists canon_events_attempt_truncate on canon.events;
create trigger canon_events_attempt_truncate before truncate on canon.events
  for each statement execute function canon.ledger_edit_attempt();
alter table canon.events enable always trigger canon_events_attempt_truncate;

create or replace function canon.ledger_edit_register()
returns table (refused_total bigint, bypass_total bigint, last_at timestamptz, last_role text, last_op text,
               last_bypass boolean, last_pid integer)
language sql stable
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
  select (select case when is_called then last_value else 0 end from canon.ledger_refused_total),
         (select case when is_called then last_value else 0 end from canon.ledger_bypass_total),
         (select case when is_called then to_timestamp(last_value / 1000000.0) end from canon.ledger_last_edit_at_us),
         (select case when s.is_called then coalesce(r.rolname::text, 'role oid ' || s.last_value) end
            from canon.ledger_last_edit_role s left join pg_roles r on r.oid = s.last_value::oid),
         (select case when is_called then (array['UPDATE', 'DELETE', 'TRUNCATE'])[(last_value % 10)::int] end from canon.ledger_last_edit_op),
         (select case when is_called then last_value >= 10 end from canon.ledger_last_edit_op),
         (select case when is_called then last_value::int end from canon.ledger_last_edit_pid)
$$;
revoke all on function canon.ledger_edit_register() from public;
grant execute on function canon.ledger_edit_register() to canon_reader;

-- The decider serialises decisions about one entity on the entity's row. SELECT ... FOR
-- UPDATE needs UPDATE privilege on the table, which no role but the owner has on the
-- ledger, so the lock is taken here.
create or replace function canon.lock_entity(p_entity_id text) returns integer
language sql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
  select head_seq from canon.entities where id = p_entity_id for update
$$;
revoke all on function canon.lock_entity(text) from public;
grant execute on function canon.lock_entity(text) to canon_worker;

-- canon.events is partitioned by month of created_at (UTC; decision 0034). Creates the
-- partition of every month from p_from's through p_months_ahead months after the current one
-- that has none yet, and returns how many it created. Skipped: a month that is archived (its
-- partition comes back with `canon archive restore`) and a month whose rows already sit in
-- the default partition (they stay there; such a month cannot be archived). Creating a
-- partition locks the table briefly: a lock not granted within 2 s skips the month, and the
-- next call (`canon tick`, `canon migrate`) tries again.
create or replace function canon.ensure_event_partitions(p_from timestamptz default now(), p_months_ahead integer default 2)
returns integer
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
set lock_timeout = '2s'
as $$
declare
  v_month timestamptz := date_trunc('month', least(p_from, now()) at time zone 'UTC') at time zone 'UTC';
  v_last timestamptz := (date_trunc('month', now() at time zone 'UTC') + make_interval(months => p_months_ahead)) at time zone 'UTC';
  v_name text;
  v_created integer := 0;
begin
  while v_month <= v_last loop
    v_name := 'events_' || to_char(v_month at time zone 'UTC', 'YYYY_MM');
    if to_regclass('canon.' || v_name) is null
       and not exists (select 1 from canon.ledger_archives a
                        where a.month = (v_month at time zone 'UTC')::date and a.restored_at is null)
       and not exists (select 1 from canon.events_default d
                        where d.created_at >= v_month and d.created_at < v_month + interval '1 month') then
      begin
        execute format('create table canon.%I partition of canon.events for values from (%L) to (%L)',
                       v_name, v_month, v_month + interval '1 month');
        v_created := v_created + 1;
      exception when lock_not_available then
        raise notice 'canon: partition % not created now (the ledger is busy); the next call retries', v_name;
      end;
    end if;
    v_month := v_month + interval '1 month';
  end loop;
  return v_created;
end $$;
revoke all on function canon.ensure_event_partitions(timestamptz, integer) from public;
grant execute on function canon.ensure_event_partitions(timestamptz, integer) to canon_worker;

-- the current month and the next two have their partitions whenever the definitions are applied
select canon.ensure_event_partitions();

-- The earliest time an event of the entity can carry (see the chain trigger): the history
-- reads bound created_at with it, so that they read only the months since the entity was
-- created instead of probing every month of the ledger.
create or replace function canon.history_floor(p_entity_id text) returns timestamptz
language sql stable parallel safe as $$
  select created_at - interval '1 day' from canon.entities where id = p_entity_id
$$;
