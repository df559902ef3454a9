// Queries of the migrator. The advisory lock key is fixed so every canon process agrees on it.
export const MIGRATION_LOCK_KEY = 7263511042;
export const MIGRATIONS_SQL = {
  lock: `select pg_advisory_lock(${MIGRATION_LOCK_KEY})`,
  unlock: `select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`,
  tablesExist: `select to_regclass('canon.schema_migrations') is not null
                   and to_regclass('canon.schema_definitions') is not null as exists`,
  // The pre-release chain recorded its first file as 0001_canonical_schema.
  preBaseline: `select to_regclass('canon.schema_migrations') is not null
                   and exists (select 1 from pg_attribute
                                where attrelid = to_regclass('canon.schema_migrations') and attname = 'breaking'
                                  and not attisdropped) as pre_baseline`,
  bootstrap: `
    create schema if not exists canon;
    create table if not exists canon.schema_migrations (
      id         integer primary key,
      name       text not null,
      class      text not null check (class in ('core', 'legacy', 'infra')),
      checksum   text not null,
      applied_at timestamptz not null default now(),
      applied_by text not null default session_user
    );
    create table if not exists canon.schema_definitions (
      name       text primary key,
      class      text not null check (class in ('core', 'legacy', 'infra')),
      checksum   text not null,
      applied_at timestamptz not null default now(),
      applied_by text not null default session_user
    )`,
  listApplied: `select id as key, name, class as cls, checksum, applied_at from canon.schema_migrations order by id`,
  listDefinitions: `select name as key, name, class as cls, checksum, applied_at from canon.schema_definitions order by name`,
  record: `insert into canon.schema_migrations (id, name, class, checksum) values ($1, $2, $3, $4)`,
  recordDefinitions: `
    insert into canon.schema_definitions (name, class, checksum) values ($1, $2, $3)
    on conflict (name) do update
       set class = excluded.class, checksum = excluded.checksum, applied_at = now(), applied_by = session_user`,
  // Triggers on canon's tables that are switched off, or set to fire on replicas only: an
  // operator's choice (canon's own files only ever create triggers or enable them ALWAYS).
  // Each row carries the statement that puts the trigger back as it was.
  triggersSwitchedByOperators: `
    select format('alter table %s %s trigger %I', t.tgrelid::regclass,
                  case t.tgenabled when 'D' then 'disable' else 'enable replica' end, t.tgname) as restore
      from pg_trigger t
      join pg_class c on c.oid = t.tgrelid
     where c.relnamespace = 'canon'::regnamespace and not t.tgisinternal and t.tgenabled in ('D', 'R')`,
} as const;
