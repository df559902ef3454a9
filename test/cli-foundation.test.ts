// The foundation's commands as a user meets them: migrations (checksums, concurrency,
// idempotence), bad input with one clear line and nothing changed, and connection failures
// that never show a stack trace or a password.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, migrationStatus, readMigrationFiles } from '../src/migrate.js';
import { migrationsDir } from '../src/paths.js';
import { canon, createEmptyDb, createTestDb, oneLineError, type TestDb } from './helpers.js';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('cli');
});
afterAll(async () => db.end());

const ledgerDigest = async () =>
  (
    await db.pool.query(
      `select count(*)::int as n, coalesce(encode(sha256(string_agg(hash, ''::bytea order by position)), 'hex'), '') as d from canon.events`,
    )
  ).rows[0];

describe('migrations', () => {
  it('applies once, is a no-op the second time, and two concurrent runs are safe', async () => {
    const empty = await createEmptyDb('mig');
    try {
      const [a, b] = await Promise.all([
        canon(['migrate', '--json'], { url: empty.url }),
        canon(['migrate', '--json'], { url: empty.url }),
      ]);
      expect(a.exitCode, a.stderr).toBe(0);
      expect(b.exitCode, b.stderr).toBe(0);
      const applied = [JSON.parse(a.stdout), JSON.parse(b.stdout)].map((r) => r.applied.length).sort();
      expect(applied).toEqual([0, readMigrationFiles().length]);
      const again = await canon(['migrate', '--json'], { url: empty.url });
      expect(JSON.parse(again.stdout).already_current).toBe(true);
      const st = await canon(['migrate', 'status', '--json'], { url: empty.url });
      expect(st.exitCode).toBe(0);
      expect(JSON.parse(st.stdout).every((m: { state: string }) => m.state === 'applied')).toBe(true);
    } finally {
      await empty.end();
    }
  });

  it('refuses an applied migration whose file changed, naming the file', async () => {
    const empty = await createEmptyDb('migedit');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-mig-'));
    fs.cpSync(migrationsDir, dir, { recursive: true });
    const c = await empty.pool.connect();
    try {
      const files = readMigrationFiles(dir);
      await migrate(c, {}, dir);
      const target = files[1];
      fs.appendFileSync(path.join(dir, target.file), '\n-- an innocent-looking edit\n');
      const st = await migrationStatus(c, readMigrationFiles(dir));
      expect(st.find((s) => s.id === target.id)!.state).toBe('changed');
      await expect(migrate(c, {}, dir)).rejects.toThrow(new RegExp(`${target.file} was changed after it was applied`));
    } finally {
      c.release();
      await empty.end();
    }
  });

  it('refuses to run engine commands on a database that is not migrated', async () => {
    const empty = await createEmptyDb('unmig');
    try {
      const r = await canon(['events', 'append', 'doc-1', 'document.created'], { url: empty.url });
      expect(r.exitCode).toBe(3);
      expect(oneLineError(r)).toMatch(/run `canon migrate`/);
    } finally {
      await empty.end();
    }
  });
});

describe('events append', () => {
  it('appends and prints the new seq; --json gives the row', async () => {
    const r = await canon(
      ['events', 'append', 'cli-doc', 'document.created', '--payload', '{"content":"hi"}', '--json'],
      { url: db.url },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const e = JSON.parse(r.stdout);
    expect(e.seq).toBe(1);
    expect(e.hash).toMatch(/^[0-9a-f]{64}$/);
    const file = path.join(os.tmpdir(), `payload-${Date.now()}.json`);
    fs.writeFileSync(file, JSON.stringify({ content: 'from a file' }));
    const f = await canon(
      ['events', 'append', 'cli-doc', 'document.note', '--payload', `@${file}`, '--expected-seq', '1'],
      { url: db.url },
    );
    expect(f.exitCode, f.stderr).toBe(0);
    expect(f.stdout).toMatch(/at seq 2/);
  });

  const bigFile = path.join(os.tmpdir(), `big-${process.pid}.json`);
  const badUtf8 = path.join(os.tmpdir(), `bad-utf8-${process.pid}.json`);
  beforeAll(() => {
    fs.writeFileSync(bigFile, JSON.stringify({ content: 'x'.repeat(10 * 1024 * 1024) }));
    fs.writeFileSync(
      badUtf8,
      Buffer.concat([Buffer.from('{"content":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
    );
  });

  it.each([
    [['events', 'append', 'cli-doc', 'document.x', '--payload', '{not json'], 2, /--payload is not valid JSON/],
    [['events', 'append', 'cli-doc', 'document.x', '--payload', '[1,2]'], 2, /must be a JSON object/],
    [['events', 'append', 'cli-doc', 'document.x', '--payload', `@${bigFile}`], 2, /limit is 1048576 bytes/],
    [['events', 'append', 'cli-doc', 'document.x', '--payload', `@${badUtf8}`], 2, /not valid UTF-8/],
    [['events', 'append', 'cli-doc', 'document.x', '--payload', '{"a":"\\u0000"}'], 2, /NUL character/],
    [
      ['events', 'append', 'cli-doc', 'document.x', '--payload', '@/no/such/file.json'],
      2,
      /cannot read \/no\/such\/file.json/,
    ],
    [
      [
        'events',
        'append',
        'cli-doc',
        'document.x',
        '--payload',
        JSON.stringify(JSON.parse(`${'{"a":'.repeat(100)}1${'}'.repeat(100)}`)),
      ],
      2,
      /nested deeper than 64/,
    ],
    [['events', 'append', 'bad id', 'document.x'], 2, /entity id "bad id" is invalid/],
    [['events', 'append', 'cli-doc', "kind'; drop table x;--"], 2, /event kind .* is invalid/],
    [
      ['events', 'append', 'cli-doc', 'document.x', '--expected-seq', 'abc'],
      2,
      /--expected-seq must be a whole number/,
    ],
    [
      ['events', 'append', 'cli-doc', 'document.x', '--expected-seq', '0'],
      4,
      /stale expected seq for entity cli-doc: expected 0/,
    ],
    [['events', 'append', 'cli-doc'], 2, /missing required argument 'kind'/],
    [['events', 'apend', 'x'], 2, /unknown command 'apend'/],
    [['gateway', 'mode', 'loose'], 2, /gateway mode must be compat or strict/],
    [['work', '--concurrency', '0'], 2, /--concurrency must be between 1 and 1000/],
    [['tick', '--max-jobs', '-1'], 2, /--max-jobs must be between 0/],
    [['db', 'start'], 2, /DATABASE_URL is set/],
    [['anchor', 'verify', 'no-such-doc'], 2, /no-such-doc has no events/],
  ])('%j → exit %i, one line, nothing changed', async (args, code, pattern) => {
    const before = await ledgerDigest();
    const r = await canon(args as string[], { url: db.url });
    expect(r.exitCode, r.stderr).toBe(code);
    expect(oneLineError(r)).toMatch(pattern);
    expect(await ledgerDigest()).toEqual(before);
  });

  it('suggests the closest command on a typo', async () => {
    const r = await canon(['migrat'], { url: db.url });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/Did you mean migrate\?/);
  });
});

describe('connection failures', () => {
  const secret = 'canary-Pa55word-xyz';
  const freePort = () =>
    new Promise<number>((resolve) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });

  it('a server that is down: one line, exit 3, no password', async () => {
    const port = await freePort();
    const r = await canon(['events', 'append', 'x', 'y'], {
      url: `postgres://canon:${secret}@127.0.0.1:${port}/canon`,
    });
    expect(r.exitCode).toBe(3);
    expect(oneLineError(r)).toMatch(/connection refused/);
    expect(r.stdout + r.stderr).not.toContain(secret);
  });

  it('a wrong password: one line, exit 3, no password', async () => {
    const u = new URL(db.url);
    u.username = 'nobody_here';
    u.password = secret;
    const r = await canon(['migrate', 'status'], { url: u.toString() });
    expect(r.exitCode).toBe(3);
    expect(oneLineError(r)).toMatch(/refused the login|does not exist|authentication/);
    expect(r.stdout + r.stderr).not.toContain(secret);
  });

  it('a URL that is not a postgres URL, or a missing database: one line', async () => {
    const r1 = await canon(['db', 'status'], { url: `mysql://root:${secret}@localhost/x` });
    expect(r1.exitCode).toBe(3);
    expect(oneLineError(r1)).toMatch(/expected postgres:\/\//);
    const u = new URL(db.url);
    u.pathname = '/no_such_database_here';
    const r2 = await canon(['db', 'status'], { url: u.toString() });
    expect(r2.exitCode).toBe(3);
    expect(oneLineError(r2)).toMatch(/does not exist/);
    expect(r1.stderr + r2.stderr).not.toContain(secret);
  });

  it('db status on a working server reports version, size and migrations', async () => {
    const r = await canon(['db', 'status', '--json'], { url: db.url });
    expect(r.exitCode, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.server_version).toMatch(/^\d+/);
    expect(s.migrations_current).toBe(true);
    expect(s.size_bytes).toBeGreaterThan(0);
    expect(JSON.stringify(s)).not.toContain(new URL(db.url).password || '\u0000');
  });
});

describe('embedded Postgres', () => {
  it('starts under CANON_HOME, survives a restart with its data, and reports a port in use', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-home-'));
    fs.chmodSync(home, 0o755);
    const envv = { CANON_HOME: home, DATABASE_URL: '' };
    const blocker = net.createServer();
    const port = await new Promise<number>((r) =>
      blocker.listen(0, '127.0.0.1', () => r((blocker.address() as net.AddressInfo).port)),
    );
    try {
      const started = await canon(['db', 'start', '--port', String(port + 1), '--json'], {
        env: envv,
        timeout: 120_000,
      });
      expect(started.exitCode, started.stderr).toBe(0);
      const m = await canon(['migrate'], { env: envv });
      expect(m.exitCode, m.stderr).toBe(0);
      expect((await canon(['events', 'append', 'kept', 'document.created'], { env: envv })).exitCode).toBe(0);
      expect((await canon(['db', 'stop'], { env: envv })).exitCode).toBe(0);
      const down = await canon(['db', 'status', '--json'], { env: envv });
      expect(JSON.parse(down.stdout).running).toBe(false);
      // on demand: a command that needs the database starts it again, and the data is still there
      const list = await canon(['events', 'list', 'kept', '--json'], { env: envv });
      expect(list.exitCode, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout)).toHaveLength(1);
      expect((await canon(['db', 'stop'], { env: envv })).exitCode).toBe(0);
      // someone else takes the port: one clear line
      const cfg = JSON.parse(fs.readFileSync(path.join(home, 'config.json'), 'utf8'));
      cfg.port = port;
      fs.writeFileSync(path.join(home, 'config.json'), JSON.stringify(cfg));
      const busy = await canon(['db', 'start'], { env: envv });
      expect(busy.exitCode).toBe(3);
      expect(oneLineError(busy)).toMatch(new RegExp(`port ${port} .* is in use`));
    } finally {
      blocker.close();
      await canon(['db', 'stop'], { env: envv });
    }
  }, 180_000);
});

describe('help', () => {
  it('every command and subcommand has an Examples section', async () => {
    const top = await canon(['--help']);
    expect(top.exitCode).toBe(0);
    const names = [...top.stdout.matchAll(/^ {2}([a-z][\w:-]*)/gm)].map((m) => m[1]).filter((n) => n !== 'help');
    expect(names.length).toBeGreaterThan(5);
    for (const name of names) {
      const h = await canon([name, '--help']);
      expect(h.stdout, name).toContain('Examples:');
      const subs = [...h.stdout.matchAll(/^Commands:\n([\s\S]*?)(?:\n\n|$)/gm)]
        .flatMap((m) => [...m[1].matchAll(/^ {2}([a-z][\w:-]*)/gm)].map((x) => x[1]))
        .filter((n) => n !== 'help');
      for (const sub of subs) {
        const hs = await canon([name, sub, '--help']);
        expect(hs.stdout, `${name} ${sub}`).toContain('Examples:');
      }
    }
  }, 240_000);
});

describe('contracts check', () => {
  it('passes on a migrated database and names the contract that breaks', async () => {
    const ok = await canon(['contracts', 'check', '--json'], { url: db.url });
    expect(ok.exitCode, ok.stdout).toBe(0);
    expect(JSON.parse(ok.stdout).contracts.every((c: { ok: boolean }) => c.ok)).toBe(true);
    await db.pool.query('alter table canon.events disable trigger canon_core_trigger');
    try {
      const bad = await canon(['contracts', 'check', '--json'], { url: db.url });
      expect(bad.exitCode).toBe(1);
      const failed = JSON.parse(bad.stdout)
        .contracts.filter((c: { ok: boolean }) => !c.ok)
        .map((c: { name: string }) => c.name);
      expect(failed).toEqual(['core_trigger_enabled']);
    } finally {
      await db.pool.query('alter table canon.events enable trigger canon_core_trigger');
    }
  });
});
