// What holds the MVCC horizon back, and how dead the hot tables are. Both are embedded in the
// health snapshot (src/sql/health.ts), so health, alerts, /metrics and the dashboard read them
// in the same round trip. Neither takes a parameter.

/** The tables every job rewrites (decision 0030): their dead tuples are what a pinned horizon piles up. */
export const HOT_TABLES = ['jobs', 'job_runs', 'entity_status', 'entities'] as const;

export const HORIZON_SQL = {
  // Whoever keeps vacuum from removing dead rows in this database, oldest first: a session
  // with a snapshot or a transaction id (idle in transaction included), a standby's feedback
  // through its walsender, a replication slot's xmin, a prepared transaction. Sessions of
  // other databases do not hold this database's tables back and are left out, and so is the
  // session asking. `seconds` is how long the holder's transaction has been open (null for a
  // slot, which has no start). Without pg_read_all_stats, other roles' sessions show no xmin.
  holders: `
    select h.kind, h.pid, h.xmin_age, h.seconds, h.usename as "user", h.application, h.state, left(h.query, 200) as query
      from (
        select 'session'::text as kind, a.pid,
               greatest(age(a.backend_xmin), age(a.backend_xid))::bigint as xmin_age,
               round(extract(epoch from now() - coalesce(a.xact_start, a.query_start, a.backend_start))::numeric, 3)::float8 as seconds,
               a.usename::text as usename, a.application_name::text as application, a.state::text as state, a.query
          from pg_stat_activity a
         where (a.backend_xmin is not null or a.backend_xid is not null)
           and a.pid <> pg_backend_pid()
           and (a.datname = current_database() or a.backend_type = 'walsender')
        union all
        select 'replication_slot', s.active_pid, age(s.xmin)::bigint, null, null, s.slot_name::text,
               case when s.active then 'active' else 'inactive' end, null
          from pg_replication_slots s
         where s.xmin is not null
        union all
        select 'prepared_transaction', null, age(p.transaction)::bigint,
               round(extract(epoch from now() - p.prepared)::numeric, 3)::float8, p.owner::text, p.gid, 'prepared', null
          from pg_prepared_xacts p
         where p.database = current_database()
      ) h
     order by h.xmin_age desc, h.seconds desc nulls last
     limit 5`,
  // live and dead tuples of the hot tables, and how many of their updates were HOT
  hotTables: `
    select s.relname::text as "table", s.n_live_tup::bigint as live_tuples, s.n_dead_tup::bigint as dead_tuples,
           coalesce(round(s.n_dead_tup::numeric / nullif(s.n_live_tup + s.n_dead_tup, 0), 4), 0)::float8 as dead_ratio,
           s.n_tup_upd::bigint as updates, s.n_tup_hot_upd::bigint as hot_updates,
           greatest(s.last_autovacuum, s.last_vacuum) as last_vacuum_at
      from pg_stat_user_tables s
     where s.schemaname = 'canon' and s.relname in (${HOT_TABLES.map((t) => `'${t}'`).join(', ')})
     order by s.relname`,
} as const;
