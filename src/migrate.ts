// canon's schema comes from two kinds of file under migrations/:
//   NNNN_name.sql          numbered migrations: tables, columns, constraints, indexes, roles.
//                          Applied once each, strictly in order, never edited once released.
//   repeatable/name.sql    definitions: functions, triggers and views, each defined in exactly
//                          one file together with its security settings and grants. A file is
//                          (re)applied whenever its text changes, after every numbered
//                          migration, in the order its `requires` header gives.
// Every file is applied with its bookkeeping row in one transaction, under an advisory lock,
// and recorded with the SHA-256 of its text.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { clientConfig, type Db, holdAdvisoryLock } from './db/connect.js';
import { CanonError, EXIT } from './errors.js';
import { migrationsDir } from './paths.js';
import { MIGRATION_LOCK_KEY, MIGRATIONS_SQL } from './sql/migrations.js';

export type MigrationClass = 'core' | 'legacy' | 'infra';

export interface MigrationFile {
  id: number;
  name: string;
  file: string;
  cls: MigrationClass;
  sql: string;
  checksum: string;
}

export interface MigrationState extends Omit<MigrationFile, 'sql'> {
  state: 'applied' | 'pending' | 'changed' | 'missing';
  appliedAt?: Date;
  appliedChecksum?: string;
}

export interface DefinitionFile {
  name: string;
  file: string;
  cls: MigrationClass;
  requires: string[];
  sql: string;
  checksum: string;
}

/** `outdated`: applied, but the file has changed since; `canon migrate` applies it again. */
export interface DefinitionState extends Omit<DefinitionFile, 'sql'> {
  state: 'applied' | 'pending' | 'outdated' | 'missing';
  appliedAt?: Date;
  appliedChecksum?: string;
}

export interface SchemaStatus {
  migrations: MigrationState[];
  definitions: DefinitionState[];
}

const MIGRATION_HEADER = /^-- canon migration \| class: (core|legacy|infra)\s*$/;
const DEFINITION_HEADER = /^-- canon definitions \| class: (core|legacy|infra) \| requires: ([a-z0-9_, ]*?)\s*$/;
const HEADER_HELP = {
  migration: '"-- canon migration | class: core|legacy|infra"',
  definition: '"-- canon definitions | class: core|legacy|infra | requires: <file names, or none>"',
};

const sha256 = (text: string) => crypto.createHash('sha256').update(text).digest('hex');
const firstLine = (text: string) => text.split('\n', 1)[0];

export function readMigrationFiles(dir = migrationsDir): MigrationFile[] {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort();
  const seen = new Set<number>();
  return files.map((file) => {
    const m = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!m) throw new CanonError(`migration file ${file} is not named NNNN_name.sql`, EXIT.FAILURE);
    const id = Number(m[1]);
    if (seen.has(id)) throw new CanonError(`two migration files share number ${m[1]}`, EXIT.FAILURE);
    seen.add(id);
    const sql = fs.readFileSync(path.join(dir, file), 'utf8');
    const h = MIGRATION_HEADER.exec(firstLine(sql));
    if (!h) throw new CanonError(`migration ${file} lacks the header line ${HEADER_HELP.migration}`, EXIT.FAILURE);
    return { id, name: m[2], file, cls: h[1] as MigrationClass, sql, checksum: sha256(sql) };
  });
}

/** The definition files, ordered so that each comes after the files it requires. */
export function readDefinitionFiles(dir = path.join(migrationsDir, 'repeatable')): DefinitionFile[] {
  if (!fs.existsSync(dir)) return [];
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort();
  const byName = new Map<string, DefinitionFile>();
  for (const file of files) {
    const m = /^([a-z0-9_]+)\.sql$/.exec(file);
    if (!m)
      throw new CanonError(`definitions file repeatable/${file} is not named name.sql (lower case)`, EXIT.FAILURE);
    const sql = fs.readFileSync(path.join(dir, file), 'utf8');
    const h = DEFINITION_HEADER.exec(firstLine(sql));
    if (!h)
      throw new CanonError(
        `definitions file repeatable/${file} lacks the header line ${HEADER_HELP.definition}`,
        EXIT.FAILURE,
      );
    const requires =
      h[2] === 'none'
        ? []
        : h[2]
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean);
    byName.set(m[1], {
      name: m[1],
      file: `repeatable/${file}`,
      cls: h[1] as MigrationClass,
      requires,
      sql,
      checksum: sha256(sql),
    });
  }
  // Depth-first topological order; ties keep alphabetical order so the result is stable.
  const ordered: DefinitionFile[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, from: string[]) => {
    const d = byName.get(name);
    if (!d)
      throw new CanonError(
        `definitions file ${from.at(-1)}.sql requires "${name}", which is not in migrations/repeatable/`,
        EXIT.FAILURE,
      );
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      throw new CanonError(
        `definitions files require each other in a circle: ${[...from, name].join(' → ')}`,
        EXIT.FAILURE,
      );
    }
    state.set(name, 'visiting');
    for (const r of d.requires) visit(r, [...from, name]);
    state.set(name, 'done');
    ordered.push(d);
  };
  for (const name of byName.keys()) visit(name, []);
  return ordered;
}

interface AppliedRow {
  checksum: string;
  applied_at: Date;
  name: string;
  cls: string;
}

/**
 * A database migrated by canon's pre-release migration chain (0001_canonical_schema …) has the
 * same tables under other bookkeeping; nothing maps one history onto the other, so it is refused.
 */
async function assertNotPreBaseline(client: pg.ClientBase): Promise<void> {
  const r = await client.query(MIGRATIONS_SQL.preBaseline);
  if (r.rows[0]?.pre_baseline) {
    throw new CanonError(
      'this database holds a pre-release canon schema (migration 0001_canonical_schema), which this canon cannot upgrade in place: ' +
        'migrate a new, empty database, or drop the old schema if its data is disposable (drop schema canon cascade)',
      EXIT.DATABASE,
    );
  }
}

async function appliedRows(client: pg.ClientBase, query: string): Promise<Map<string, AppliedRow>> {
  const exists = await client.query(MIGRATIONS_SQL.tablesExist);
  if (!exists.rows[0].exists) return new Map();
  const r = await client.query(query);
  return new Map(r.rows.map((row) => [String(row.key), row]));
}

export async function migrationStatus(client: pg.ClientBase, files = readMigrationFiles()): Promise<MigrationState[]> {
  await assertNotPreBaseline(client);
  const done = await appliedRows(client, MIGRATIONS_SQL.listApplied);
  const out: MigrationState[] = files.map(({ sql: _sql, ...f }) => {
    const a = done.get(String(f.id));
    if (!a) return { ...f, state: 'pending' };
    const state = a.checksum === f.checksum ? 'applied' : 'changed';
    return { ...f, state, appliedAt: a.applied_at, appliedChecksum: a.checksum };
  });
  for (const [key, a] of done) {
    const id = Number(key);
    if (!files.some((f) => f.id === id)) {
      const file = `${String(id).padStart(4, '0')}_${a.name}.sql`;
      out.push({
        id,
        name: a.name,
        file,
        cls: a.cls as MigrationClass,
        checksum: '',
        state: 'missing',
        appliedAt: a.applied_at,
        appliedChecksum: a.checksum,
      });
    }
  }
  return out.sort((a, b) => a.id - b.id);
}

export async function definitionStatus(
  client: pg.ClientBase,
  files = readDefinitionFiles(),
): Promise<DefinitionState[]> {
  const done = await appliedRows(client, MIGRATIONS_SQL.listDefinitions);
  const out: DefinitionState[] = files.map(({ sql: _sql, ...f }) => {
    const a = done.get(f.name);
    if (!a) return { ...f, state: 'pending' };
    const state = a.checksum === f.checksum ? 'applied' : 'outdated';
    return { ...f, state, appliedAt: a.applied_at, appliedChecksum: a.checksum };
  });
  for (const [name, a] of done) {
    if (!files.some((f) => f.name === name)) {
      out.push({
        name,
        file: `repeatable/${name}.sql`,
        cls: a.cls as MigrationClass,
        requires: [],
        checksum: '',
        state: 'missing',
        appliedAt: a.applied_at,
        appliedChecksum: a.checksum,
      });
    }
  }
  return out;
}

export async function schemaStatus(client: pg.ClientBase): Promise<SchemaStatus> {
  return { migrations: await migrationStatus(client), definitions: await definitionStatus(client) };
}

/** True when every numbered migration and every definitions file on disk is applied as it is. */
export function isCurrent(s: SchemaStatus): boolean {
  return s.migrations.every((m) => m.state === 'applied') && s.definitions.every((d) => d.state === 'applied');
}

/** Refuses a history that `canon migrate` must not build on: edited, missing or skipped migrations. */
export function assertUnchanged(states: MigrationState[], definitions: DefinitionState[] = []): void {
  const changed = states.find((s) => s.state === 'changed');
  if (changed) {
    throw new CanonError(
      `migration ${changed.file} was changed after it was applied (sha256 ${changed.appliedChecksum!.slice(0, 12)}… in the database, ${changed.checksum.slice(0, 12)}… on disk): restore the file and put the change in a new migration`,
      EXIT.FAILURE,
    );
  }
  const missing = states.find((s) => s.state === 'missing') ?? definitions.find((d) => d.state === 'missing');
  if (missing) {
    throw new CanonError(
      `${missing.file} is applied in the database but missing here: this canon is older than the database; run a canon at least as new`,
      EXIT.FAILURE,
    );
  }
  const highest = Math.max(0, ...states.filter((s) => s.state === 'applied').map((s) => s.id));
  const skipped = states.find((s) => s.state === 'pending' && s.id < highest);
  if (skipped) {
    const later = states.find((s) => s.state === 'applied' && s.id > skipped.id)!;
    throw new CanonError(
      `migration ${skipped.file} is not applied, but ${later.file}, a later one, is: migrations apply strictly in order; renumber ${skipped.file} after the highest applied one`,
      EXIT.FAILURE,
    );
  }
}

export interface MigrateResult {
  applied: MigrationState[];
  definitions: DefinitionState[];
  alreadyCurrent: boolean;
}

export interface MigrateProgress {
  migration?: (m: MigrationFile) => void;
  definitions?: (d: DefinitionFile, was: DefinitionState['state']) => void;
}

async function inTransaction(client: pg.ClientBase, file: string, work: () => Promise<void>): Promise<void> {
  await client.query('begin');
  try {
    await work();
    await client.query('commit');
  } catch (e) {
    await client.query('rollback').catch(() => {});
    throw new CanonError(`${file} failed and was rolled back: ${(e as Error).message}`, EXIT.FAILURE);
  }
}

/**
 * Applies pending numbered migrations, then every definitions file that is new or changed.
 * Concurrent callers serialise on an advisory lock; the second finds nothing to do. This one
 * holds the lock in `client`'s session: for a direct connection (tests, tools); commands use
 * migrateDatabase, which works through a transaction pooler too.
 */
export async function migrate(
  client: pg.ClientBase,
  progress: MigrateProgress = {},
  dir = migrationsDir,
): Promise<MigrateResult> {
  await client.query(MIGRATIONS_SQL.lock);
  try {
    return await applyMigrations(client, progress, dir);
  } finally {
    await client.query(MIGRATIONS_SQL.unlock).catch(() => {});
  }
}

/**
 * migrate() for a command's database: the lock is held by a transaction on a pool connection
 * (so it works through a transaction pooler), the files run on a connection of their own
 * without statement or reply limits (an index build may take long).
 */
export async function migrateDatabase(db: Db, progress: MigrateProgress = {}): Promise<MigrateResult> {
  const release = (await holdAdvisoryLock(db.pool, MIGRATION_LOCK_KEY, true))!;
  const client = new pg.Client(clientConfig(db.target.url, 'canon migrate', { unlimitedStatements: true }));
  client.on('error', () => {});
  try {
    await client.connect();
    return await applyMigrations(client, progress, migrationsDir);
  } finally {
    await client.end().catch(() => {});
    await release();
  }
}

async function applyMigrations(client: pg.ClientBase, progress: MigrateProgress, dir: string): Promise<MigrateResult> {
  const files = readMigrationFiles(dir);
  const defs = readDefinitionFiles(path.join(dir, 'repeatable'));
  await assertNotPreBaseline(client);
  await client.query(MIGRATIONS_SQL.bootstrap);
  const states = await migrationStatus(client, files);
  const defStates = await definitionStatus(client, defs);
  assertUnchanged(states, defStates);
  const pending = files.filter((f) => states.find((s) => s.id === f.id)?.state === 'pending');
  for (const m of pending) {
    progress.migration?.(m);
    await inTransaction(client, m.file, async () => {
      // the bookkeeping row first: a second migrator that got past the lock would fail here
      await client.query(MIGRATIONS_SQL.record, [m.id, m.name, m.cls, m.checksum]);
      await client.query(m.sql);
    });
  }
  // read again: a numbered migration that rebuilds a table (0021) clears this bookkeeping so
  // that every definitions file re-creates its objects on the new table
  const defsNow = pending.length ? await definitionStatus(client, defs) : defStates;
  const due = defs.filter((d) => defsNow.find((s) => s.name === d.name)?.state !== 'applied');
  for (const d of due) {
    progress.definitions?.(d, defsNow.find((s) => s.name === d.name)!.state);
    await inTransaction(client, `migrations/${d.file}`, async () => {
      await client.query(MIGRATIONS_SQL.recordDefinitions, [d.name, d.cls, d.checksum]);
      // A definitions file re-creates its triggers; a trigger an operator switched off (or
      // set to fire on replicas only) stays that way.
      const kept = await client.query(MIGRATIONS_SQL.triggersSwitchedByOperators);
      await client.query(d.sql);
      for (const t of kept.rows) await client.query(t.restore);
    });
  }
  const after = await migrationStatus(client, files);
  const afterDefs = await definitionStatus(client, defs);
  return {
    applied: after.filter((s) => pending.some((p) => p.id === s.id)),
    definitions: afterDefs.filter((s) => due.some((d) => d.name === s.name)),
    alreadyCurrent: pending.length === 0 && due.length === 0,
  };
}

/** Refuses to run engine commands against a database whose schema is missing or stale. */
export async function assertMigrated(client: pg.ClientBase): Promise<void> {
  const states = await migrationStatus(client);
  const defs = await definitionStatus(client);
  assertUnchanged(states, defs);
  const pending = [...states.filter((s) => s.state === 'pending'), ...defs.filter((d) => d.state !== 'applied')];
  if (pending.length) {
    throw new CanonError(
      `the database is missing ${pending.length} canon migration(s) (first: ${pending[0].file}): run \`canon migrate\``,
      EXIT.DATABASE,
    );
  }
}
