export const DB_SQL = {
  serverInfo: `select current_setting('server_version') as version, current_database() as database,
                      pg_database_size(current_database()) as size_bytes, current_user as user`,
} as const;
