// Numbered, immutable SQL migrations. Each file's first line says its class (core, legacy,
// infra) and whether it is breaking; each is applied with its version row in one transaction
// under an advisory lock, and recorded with the SHA-256 of its text. An applied file that
// changed is refused: write a new migration instead.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { CanonError, EXIT } from './errors.js';
import { migrationsDir } from './paths.js';
import { MIGRATIONS_SQL } from './sql/migrations.js';

export type MigrationClass = 'core' | 'legacy' | 'infra';

export interface MigrationFile {
  id: number;
  name: string;
  file: string;
  cls: MigrationClass;
  breaking: boolean;
  sql: string;
  checksum: string;
}

export interface MigrationState extends Omit<MigrationFile, 'sql'> {
  state: 'applied' | 'pending' | 'changed' | 'missing';
  appliedAt?: Date;
  appliedChecksum?: string;
}

const HEADER = /^-- canon migration \| class: (core|legacy|infra) \| breaking: (yes|no)\s*$/;

export function readMigrationFiles(dir = migrationsDir): MigrationFile[] {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  const seen = new Set<number>();
  return files.map((file) => {
    const m = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!m) throw new CanonError(`migration file ${file} is not named NNNN_name.sql`, EXIT.FAILURE);
    const id = Number(m[1]);
    if (seen.has(id)) throw new CanonError(`two migration files share number ${m[1]}`, EXIT.FAILURE);
    seen.add(id);
    const sql = fs.readFileSync(path.join(dir, file), 'utf8');
    const h = HEADER.exec(sql.split('\n', 1)[0]);
    if (!h) {
      throw new CanonError(`migration ${file} lacks the header line "-- canon migration | class: core|legacy|infra | breaking: yes|no"`, EXIT.FAILURE);
    }
    return {
      id,
      name: m[2],
      file,
      cls: h[1] as MigrationClass,
      breaking: h[2] === 'yes',
      sql,
      checksum: crypto.createHash('sha256').update(sql).digest('hex'),
    };
  });
}

async function applied(client: pg.ClientBase): Promise<Map<number, { checksum: string; applied_at: Date; name: string; cls: string }>> {
  const exists = await client.query(MIGRATIONS_SQL.tableExists);
  if (!exists.rows[0].exists) return new Map();
  const r = await client.query(MIGRATIONS_SQL.listApplied);
  return new Map(r.rows.map((row) => [Number(row.id), row]));
}

export async function migrationStatus(client: pg.ClientBase, files = readMigrationFiles()): Promise<MigrationState[]> {
  const done = await applied(client);
  const out: MigrationState[] = files.map(({ sql: _sql, ...f }) => {
    const a = done.get(f.id);
    if (!a) return { ...f, state: 'pending' };
    return { ...f, state: a.checksum === f.checksum ? 'applied' : 'changed', appliedAt: a.applied_at, appliedChecksum: a.checksum };
  });
  for (const [id, a] of done) {
    if (!files.some((f) => f.id === id)) {
      out.push({ id, name: a.name, file: `${String(id).padStart(4, '0')}_${a.name}.sql`, cls: a.cls as MigrationClass, breaking: false, checksum: '', state: 'missing', appliedAt: a.applied_at, appliedChecksum: a.checksum });
    }
  }
  return out.sort((a, b) => a.id - b.id);
}

export function assertUnchanged(states: MigrationState[]): void {
  const changed = states.find((s) => s.state === 'changed');
  if (changed) {
    throw new CanonError(
      `migration ${changed.file} was changed after it was applied (sha256 ${changed.appliedChecksum!.slice(0, 12)}… in the database, ${changed.checksum.slice(0, 12)}… on disk): restore the file and put the change in a new migration`,
      EXIT.FAILURE,
    );
  }
  const missing = states.find((s) => s.state === 'missing');
  if (missing) {
    throw new CanonError(`migration ${missing.file} is applied in the database but its file is missing: this canon is older than the database`, EXIT.FAILURE);
  }
}

export interface MigrateResult {
  applied: MigrationState[];
  alreadyCurrent: boolean;
}

/** Applies pending migrations. Concurrent callers serialise on an advisory lock; the second finds nothing to do. */
export async function migrate(client: pg.ClientBase, onApply?: (m: MigrationFile) => void): Promise<MigrateResult> {
  const files = readMigrationFiles();
  await client.query(MIGRATIONS_SQL.lock);
  try {
    await client.query(MIGRATIONS_SQL.bootstrap);
    const states = await migrationStatus(client, files);
    assertUnchanged(states);
    const pending = files.filter((f) => states.find((s) => s.id === f.id)?.state === 'pending');
    for (const m of pending) {
      onApply?.(m);
      await client.query('begin');
      try {
        await client.query(MIGRATIONS_SQL.record, [m.id, m.name, m.cls, m.breaking, m.checksum]);
        await client.query(m.sql);
        await client.query('commit');
      } catch (e) {
        await client.query('rollback').catch(() => {});
        throw new CanonError(`migration ${m.file} failed and was rolled back: ${(e as Error).message}`, EXIT.FAILURE);
      }
    }
    const after = await migrationStatus(client, files);
    return { applied: after.filter((s) => pending.some((p) => p.id === s.id)), alreadyCurrent: pending.length === 0 };
  } finally {
    await client.query(MIGRATIONS_SQL.unlock).catch(() => {});
  }
}

/** Refuses to run engine commands against a database whose schema is missing or stale. */
export async function assertMigrated(client: pg.ClientBase): Promise<void> {
  const states = await migrationStatus(client);
  assertUnchanged(states);
  const pending = states.filter((s) => s.state === 'pending');
  if (pending.length) {
    throw new CanonError(`the database is missing ${pending.length} canon migration(s) (first: ${pending[0].file}): run \`canon migrate\``, EXIT.DATABASE);
  }
}
