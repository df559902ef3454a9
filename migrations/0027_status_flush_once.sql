-- canon migration | class: core | breaking: no
-- The status flush is queued once per transaction, not once per dirty entity. 0004 put the
-- deferred constraint trigger on canon.status_dirty itself, so every entity a transaction
-- touched queued a firing, and all but the first returned at once: 38,230 firings for 20,000
-- no-op jobs, one per entity per commit (pg_stat_user_functions). The trigger now sits on a
-- one-row-per-transaction marker, canon.status_flush_due, which canon.mark_status_dirty
-- inserts the first time a transaction marks anything; the flush, the entity order of its
-- locks and the session setting that names the pending transaction are as in 0004 (under SET
-- CONSTRAINTS ALL IMMEDIATE the flush fires at the end of the marker's insert, clears the
-- setting, and the next mark queues it again).
create unlogged table canon.status_flush_due (
  xid xid8 primary key default pg_current_xact_id()
);
revoke all on canon.status_flush_due from public;

create or replace function canon.mark_status_dirty(p_ids text[]) returns void
language plpgsql security definer set search_path = pg_catalog, canon, pg_temp as $$
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

create or replace function canon.status_flush() returns trigger
language plpgsql security definer set search_path = pg_catalog, canon, pg_temp as $$
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

drop trigger canon_status_flush on canon.status_dirty;
create constraint trigger canon_status_flush after insert on canon.status_flush_due
  deferrable initially deferred for each row execute function canon.status_flush();
