// Queries of the migrator. The advisory lock key is fixed so every canon process agrees on it.
export const MIGRATIONS_SQL = {
  lock: `select pg_advisory_lock(7263511042)`,
  unlock: `select pg_advisory_unlock(7263511042)`,
  tableExists: `select to_regclass('canon.schema_migrations') is not null as exists`,
  bootstrap: `
    create schema if not exists canon;
    create table if not exists canon.schema_migrations (
      id         integer primary key,
      name       text not null,
      class      text not null check (class in ('core', 'legacy', 'infra')),
      breaking   boolean not null default false,
      checksum   text not null,
      applied_at timestamptz not null default now(),
      applied_by text not null default session_user
    )`,
  listApplied: `select id, name, class as cls, checksum, applied_at from canon.schema_migrations order by id`,
  record: `insert into canon.schema_migrations (id, name, class, breaking, checksum) values ($1, $2, $3, $4, $5)`,
} as const;
