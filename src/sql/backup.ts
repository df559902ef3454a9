// Logical backup and restore of everything canon owns (the tables and sequences of schema
// canon), without pg_dump: the catalog says what there is, rows travel as jsonb, and restore
// loads them back with jsonb_populate_recordset. Table names in statements always come from
// the target's own catalog (regclass text), never from the backup file.
export const BACKUP_SQL = {
  serverVersion: `select current_setting('server_version') as version`,
  // every ordinary table of schema canon except the migrator's own record
  tables: `
    select c.oid::regclass::text as name,
           array(select a.attname::text from pg_attribute a
                  where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
                  order by a.attnum) as columns,
           array(select a.attname::text from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
                  where i.indrelid = c.oid and i.indisprimary order by array_position(i.indkey::int2[], a.attnum)) as key
      from pg_class c
     where c.relnamespace = 'canon'::regnamespace and c.relkind in ('r', 'p') and c.relname <> 'schema_migrations'
       -- unlogged tables are the server's state, not data (canon.run_id_guard)
       and c.relpersistence = 'p'
       -- a partition's rows are read through its parent (canon.events' months)
       and not c.relispartition
     order by 1`,
  // foreign keys between canon's tables, for the load order (parents first)
  foreignKeys: `
    select conrelid::regclass::text as child, confrelid::regclass::text as parent
      from pg_constraint
     where contype = 'f' and connamespace = 'canon'::regnamespace and conrelid <> confrelid`,
  sequences: `select c.oid::regclass::text as name from pg_class c where c.relnamespace = 'canon'::regnamespace and c.relkind = 'S' order by 1`,
  // $1: a sequence name from the catalog query above
  sequenceState: (seq: string) => `select last_value::text as last_value, is_called from ${seq}`,
  setSequence: `select setval($1::regclass, $2::bigint, $3::boolean)`,
  rowCount: (table: string) => `select count(*)::bigint as n from ${table}`,
  declareRows: (table: string, key: string[]) =>
    `declare canon_backup_rows no scroll cursor for select to_jsonb(t)::text as row from ${table} t${key.length ? ` order by ${key.map((k) => `t.${quoteIdent(k)}`).join(', ')}` : ''}`,
  fetchRows: `fetch forward 2000 from canon_backup_rows`,
  closeRows: `close canon_backup_rows`,
  appliedMigrations: `select id, name, checksum from canon.schema_migrations order by id`,
  // emptiness of the target: the ledger and the queue
  occupancy: `select (select count(*) from canon.events)::bigint as events, (select count(*) from canon.jobs)::bigint as jobs,
                     (select count(*) from canon.entities)::bigint as entities`,
  disableTriggers: (table: string) => `alter table ${table} disable trigger user`,
  enableTriggers: (table: string) => `alter table ${table} enable trigger user`,
  deleteAll: (table: string) => `delete from ${table}`,
  // $1: a JSON array of rows as written by backup
  insertRows: (table: string, columns: string[]) => {
    const cols = columns.map(quoteIdent).join(', ');
    return `insert into ${table} (${cols}) overriding system value select ${cols} from jsonb_populate_recordset(null::${table}, $1::jsonb)`;
  },
} as const;

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
