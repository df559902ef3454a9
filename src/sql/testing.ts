// canon/testing's integration run: its throw-away databases and how far the entities under
// test have come. Database names are made by canon (letters, digits and _), never typed in.
const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

export const TESTING_SQL = {
  /** Jobs not yet ended (queued, also while backing off, or running), and counts that move while work happens. */
  progress: `select (select count(*) from canon.jobs where entity_id = any($1) and status in ('queued', 'running'))::int as pending,
                    (select count(*) from canon.events where entity_id = any($1))::int as events,
                    (select count(*) from canon.job_runs where entity_id = any($1))::int as runs`,
  databaseExists: 'select exists (select 1 from pg_database where datname = $1) as exists',
  createDatabase: (name: string, template?: string) =>
    `create database ${ident(name)}${template ? ` template ${ident(template)}` : ''}`,
  renameDatabase: (from: string, to: string) => `alter database ${ident(from)} rename to ${ident(to)}`,
  dropDatabase: (name: string) => `drop database if exists ${ident(name)} with (force)`,
} as const;
