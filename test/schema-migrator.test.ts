// The migrator's rules, on real databases: numbered migrations strictly in order, definitions
// files re-applied when their text changes (keeping an operator's disabled trigger disabled),
// both kinds shown by `canon migrate status`, and a pre-release schema refused in one line.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { definitionStatus, migrate, migrationStatus, readDefinitionFiles, readMigrationFiles } from '../src/migrate.js';
import { migrationsDir } from '../src/paths.js';
import { canon, createEmptyDb, oneLineError, type TestDb } from './helpers.js';

const dbs: TestDb[] = [];
afterAll(async () => {
  for (const d of dbs) await d.end();
});
async function emptyDb(label: string): Promise<TestDb> {
  const d = await createEmptyDb(label);
  dbs.push(d);
  return d;
}
function copyOfMigrations(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-mig-'));
  fs.cpSync(migrationsDir, dir, { recursive: true });
  return dir;
}

describe('definitions files', () => {
  it('are ordered by their requires header, each after what it requires', () => {
    const defs = readDefinitionFiles();
    expect(defs.length).toBeGreaterThan(0);
    const seen = new Set<string>();
    for (const d of defs) {
      for (const r of d.requires) expect(seen.has(r), `${d.file} requires ${r}, which must come first`).toBe(true);
      seen.add(d.name);
    }
  });

  it('refuses a requires header naming a file that does not exist, or a circle', () => {
    const dir = copyOfMigrations();
    const ledger = path.join(dir, 'repeatable', 'ledger.sql');
    const text = fs.readFileSync(ledger, 'utf8');
    fs.writeFileSync(ledger, text.replace(/requires: none/, 'requires: nowhere'));
    expect(() => readDefinitionFiles(path.join(dir, 'repeatable'))).toThrow(/ledger\.sql requires "nowhere"/);
    fs.writeFileSync(ledger, text.replace(/requires: none/, 'requires: gateway'));
    expect(() => readDefinitionFiles(path.join(dir, 'repeatable'))).toThrow(/in a circle: .*ledger → gateway → ledger/);
  });

  it('are applied again when their text changes, and a trigger an operator disabled stays disabled', async () => {
    const db = await emptyDb('defs');
    const dir = copyOfMigrations();
    const c = await db.pool.connect();
    try {
      await migrate(c, {}, dir);
      await c.query('alter table canon.events disable trigger canon_core_trigger');
      const gateway = path.join(dir, 'repeatable', 'gateway.sql');
      fs.appendFileSync(gateway, '\n-- a change to the gateway file\n');
      const before = await definitionStatus(c, readDefinitionFiles(path.join(dir, 'repeatable')));
      expect(before.find((d) => d.name === 'gateway')!.state).toBe('outdated');
      expect(before.filter((d) => d.state !== 'applied').map((d) => d.name)).toEqual(['gateway']);

      const res = await migrate(c, {}, dir);
      expect(res.applied).toEqual([]);
      expect(res.definitions.map((d) => d.name)).toEqual(['gateway']);
      const t = (
        await c.query(
          `select tgenabled from pg_trigger where tgrelid = 'canon.events'::regclass and tgname = 'canon_core_trigger'`,
        )
      ).rows[0];
      expect(t.tgenabled).toBe('D');
      // the triggers canon enables ALWAYS are still so
      const always = (await c.query(`select tgenabled from pg_trigger where tgname = 'canon_events_attempt'`)).rows[0];
      expect(always.tgenabled).toBe('A');
      expect((await migrate(c, {}, dir)).alreadyCurrent).toBe(true);
    } finally {
      c.release();
    }
  });
});

describe('numbered migrations', () => {
  it('apply strictly in order: a lower number arriving after a higher one is refused, naming it', async () => {
    const db = await emptyDb('order');
    const dir = copyOfMigrations();
    const c = await db.pool.connect();
    try {
      await migrate(c, {}, dir);
      const last = readMigrationFiles(dir).at(-1)!.id;
      const n = (k: number) => String(last + k).padStart(4, '0');
      fs.writeFileSync(
        path.join(dir, `${n(2)}_later.sql`),
        '-- canon migration | class: core\ncreate table canon.t_later (id int);\n',
      );
      await migrate(c, {}, dir);
      fs.writeFileSync(
        path.join(dir, `${n(1)}_late.sql`),
        '-- canon migration | class: core\ncreate table canon.t_late (id int);\n',
      );
      const err = migrate(c, {}, dir);
      await expect(err).rejects.toThrow(
        new RegExp(`migration ${n(1)}_late\\.sql is not applied, but ${n(2)}_later\\.sql, a later one, is`),
      );
      expect((await c.query(`select to_regclass('canon.t_late') as t`)).rows[0].t).toBeNull();
      const st = await migrationStatus(c, readMigrationFiles(dir));
      expect(st.find((s) => s.id === last + 1)!.state).toBe('pending');
    } finally {
      c.release();
    }
  });
});

describe('canon migrate status', () => {
  it('lists both kinds with their state, and exits 0 only when everything is applied', async () => {
    const db = await emptyDb('status');
    const pending = await canon(['migrate', 'status', '--json'], { url: db.url });
    expect(pending.exitCode).toBe(1);
    const rows0 = JSON.parse(pending.stdout) as { kind: string; state: string }[];
    expect(new Set(rows0.map((r) => r.state))).toEqual(new Set(['pending']));

    const up = await canon(['migrate', '--json'], { url: db.url });
    expect(up.exitCode, up.stderr).toBe(0);
    const res = JSON.parse(up.stdout);
    expect(res.applied.length).toBe(readMigrationFiles().length);
    expect(res.definitions.length).toBe(readDefinitionFiles().length);

    const st = await canon(['migrate', 'status', '--json'], { url: db.url });
    expect(st.exitCode).toBe(0);
    const rows = JSON.parse(st.stdout) as { kind: string; file: string; state: string }[];
    expect(rows.filter((r) => r.kind === 'numbered').length).toBe(readMigrationFiles().length);
    expect(rows.filter((r) => r.kind === 'definitions').map((r) => r.file)).toEqual(
      readDefinitionFiles().map((d) => d.file),
    );
    expect(rows.every((r) => r.state === 'applied')).toBe(true);
    const text = await canon(['migrate', 'status'], { url: db.url });
    expect(text.stdout).toMatch(/0001_ledger\.sql\s+core\s+applied/);
    expect(text.stdout).toMatch(/repeatable\/runs\.sql\s+core\s+applied/);
  });
});

describe('a database migrated by the pre-release chain', () => {
  it('is refused in one line that says what to do, and left as it was', async () => {
    const db = await emptyDb('prerelease');
    // the pre-release migrator's bookkeeping: its table had a `breaking` column
    await db.pool.query(`create schema canon;
      create table canon.schema_migrations (id integer primary key, name text not null, class text not null,
        breaking boolean not null default false, checksum text not null, applied_at timestamptz not null default now(),
        applied_by text not null default session_user);
      insert into canon.schema_migrations (id, name, class, checksum) values (1, 'canonical_schema', 'core', 'x')`);
    const says = /pre-release canon schema .*migrate a new, empty database/;
    for (const args of [['migrate'], ['migrate', 'status']]) {
      const r = await canon(args, { url: db.url });
      expect(r.exitCode, args.join(' ')).toBe(3);
      expect(oneLineError(r)).toMatch(says);
    }
    // health speaks the monitoring-plugin convention: UNKNOWN, its one status line on stdout
    const h = await canon(['health'], { url: db.url });
    expect(h.exitCode).toBe(3);
    expect(h.stdout.trim().split('\n')).toHaveLength(1);
    expect(h.stdout).toMatch(says);
    const tables = (await db.pool.query(`select count(*)::int as n from pg_tables where schemaname = 'canon'`)).rows[0]
      .n;
    expect(tables).toBe(1);
  });
});
