export const DB_SQL = {
  serverInfo: `select current_setting('server_version') as version, current_database() as database,
                      pg_database_size(current_database()) as size_bytes, current_user as user`,
  // a lock held by an open transaction (canon/src/db/connect.ts holdAdvisoryLock): kept on
  // one server connection even behind a transaction pooler, and released by commit
  holdForLock: `select set_config('idle_in_transaction_session_timeout', '0', true)`,
  tryXactLock: `select pg_try_advisory_xact_lock($1) as locked`,
} as const;
