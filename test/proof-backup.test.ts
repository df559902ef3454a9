// Export, backup and restore on a real Postgres: the export digest is stable and equals the
// file's SHA-256; a backup restored into a new, empty database gives the same digest, a clean
// audit and the same rows; damaged, tampered or misplaced restores keep nothing.
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvent } from '../src/ledger.js';
import { canon, createEmptyDb, createTestDb, oneLineError, type TestDb } from './helpers.js';

const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-tsa-'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-backup-'));
const env = { CANON_TSA_KEY_DIR: keyDir };
let src: TestDb;
const others: TestDb[] = [];

// every logged canon table: unlogged ones (status_dirty, run_id_guard) are the server's state
const tables = async (db: TestDb) =>
  (
    await db.pool.query(`select c.oid::regclass::text as name from pg_class c
                         where c.relnamespace = 'canon'::regnamespace and c.relkind in ('r', 'p') and c.relname <> 'schema_migrations'
                           and c.relpersistence = 'p' and not c.relispartition order by 1`)
  ).rows.map((r) => r.name as string);
/** Every row of every canon table, as text, in a stable order: two databases hold the same data when these are equal. */
async function contents(db: TestDb): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of await tables(db))
    out[t] = (await db.pool.query(`select to_jsonb(x)::text as r from ${t} x order by 1`)).rows.map((r) => r.r);
  return out;
}
const digest = async (db: TestDb) => {
  const r = await canon(['export', '--hash'], { url: db.url });
  expect(r.exitCode, r.stderr).toBe(0);
  return r.stdout.trim();
};
async function emptyDb(label: string) {
  const db = await createEmptyDb(label);
  others.push(db);
  return db;
}

beforeAll(async () => {
  src = await createTestDb('proofbackup');
  for (let i = 0; i < 6; i++) {
    // biome-ignore lint/correctness/noPrecisionLoss: a number past 2^53 on purpose: a backup keeps what jsonb stored
    const big = 12345678901234567890;
    await appendEvent(src.pool, {
      entityId: `bk-${i}`,
      kind: 'document.created',
      payload: { content: `document ${i} ✓ "quoted" \\ back`, n: 1.5, big },
    });
  }
  await appendEvent(src.pool, {
    entityId: 'bk-poison',
    kind: 'document.created',
    payload: { content: 'fails #permanent' },
  });
  const r = await canon(['work', '--once', '--log-level', 'warn'], { url: src.url, env });
  expect(r.exitCode, r.stderr).toBe(0);
  // a refused edit, so the register (sequences) has something to carry over
  await src.pool.query(`update canon.events set kind = 'x' where false`).catch(() => {});
});
afterAll(async () => {
  await src.end();
  for (const d of others) await d.end();
});

describe('export', () => {
  it('gives the same digest every time, equal to the SHA-256 of the exported file', async () => {
    const d1 = await digest(src);
    expect(d1).toMatch(/^[0-9a-f]{64}$/);
    expect(await digest(src)).toBe(d1);
    const out = path.join(dir, 'ledger.jsonl');
    const r = await canon(['export', '--hash', '--out', out, '--json'], { url: src.url });
    expect(JSON.parse(r.stdout)).toMatchObject({ digest: d1, out });
    expect(createHash('sha256').update(fs.readFileSync(out)).digest('hex')).toBe(d1);
    const lines = fs
      .readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.position)).toEqual([...lines.map((l) => l.position)].sort((a, b) => a - b));
    expect(lines[0]).toMatchObject({
      seq: 1,
      kind: 'document.created',
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/),
    });
    // stdout without --hash: the lines themselves (the helper strips the last newline)
    const plain = await canon(['export'], { url: src.url });
    expect(createHash('sha256').update(`${plain.stdout}\n`).digest('hex')).toBe(d1);
  });
});

describe('backup and restore', () => {
  const file = path.join(dir, 'canon.backup');

  it('restores into an empty database with the same digest, a clean audit and the same rows', async () => {
    const before = await digest(src);
    const b = await canon(['backup', file, '--json'], { url: src.url });
    expect(b.exitCode, b.stderr).toBe(0);
    expect(JSON.parse(b.stdout)).toMatchObject({ file, ledger: { digest: before } });

    const dst = await emptyDb('restore');
    const r = await canon(['restore', file, '--json'], { url: dst.url });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ledger: { digest: before }, audit_ok: true });
    expect(await digest(dst)).toBe(before);
    expect((await canon(['audit', 'verify'], { url: dst.url })).exitCode).toBe(0);
    expect((await canon(['status', 'verify'], { url: dst.url })).exitCode).toBe(0);
    expect(await contents(dst)).toEqual(await contents(src));
    // the register of refused edits came along
    const reg = (db: TestDb) =>
      db.pool
        .query('select refused_total from canon.ledger_edit_register()')
        .then((x) => Number(x.rows[0].refused_total));
    expect(await reg(dst)).toBe(await reg(src));
    expect(await reg(dst)).toBeGreaterThan(0);
    // the restored database goes on: positions and ids continue, hashes chain from the restored heads
    const e = await appendEvent(dst.pool, { entityId: 'bk-0', kind: 'note.added' });
    const maxSrc = (await src.pool.query('select max(position)::int as m from canon.events')).rows[0].m;
    expect(e.position).toBeGreaterThan(maxSrc);
    expect((await canon(['audit', 'verify'], { url: dst.url })).exitCode).toBe(0);
    expect((await canon(['status', 'verify'], { url: dst.url })).exitCode).toBe(0);

    // a second restore into the now non-empty database is refused and changes nothing
    const again = await canon(['restore', file], { url: dst.url });
    expect(again.exitCode).toBe(2);
    expect(oneLineError(again)).toMatch(/not empty/);
  });

  it('keeps nothing from a damaged, tampered or foreign backup', async () => {
    const raw = zlib.gunzipSync(fs.readFileSync(file)).toString('utf8');
    const write = (name: string, text: string | Buffer, gzip = true) => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, gzip ? zlib.gzipSync(text) : text);
      return p;
    };
    const lines = raw.split('\n');
    const header = JSON.parse(lines[0]);
    const eventLine = lines.findIndex((l) => l.includes('"kind": "document.created"') && l.includes('"hash"'));
    expect(eventLine).toBeGreaterThan(0);
    const tampered = [...lines];
    tampered[eventLine] = tampered[eventLine].replace('document 0', 'document 9');
    expect(tampered[eventLine]).not.toBe(lines[eventLine]);
    const foreign = [
      JSON.stringify({ ...header, migrations: [...header.migrations, { id: 9999, name: 'future', checksum: 'x' }] }),
      ...lines.slice(1),
    ];
    const cases: [string, string, number, RegExp][] = [
      [write('truncated.backup', `${lines.slice(0, eventLine + 1).join('\n')}\n`), 'truncated', 2, /truncated/],
      [
        write('cut.backup', fs.readFileSync(file).subarray(0, 2000), false),
        'cut gzip',
        2,
        /not a readable canon backup/,
      ],
      [write('plain.backup', raw, false), 'not gzip', 2, /not a readable canon backup/],
      [write('header.backup', '{"format":"canon.backup/1"}\n'), 'bad header', 2, /header created_at: /],
      [
        write('foreign.backup', foreign.join('\n')),
        'other migrations',
        2,
        /restore with the canon version that took the backup/,
      ],
      [
        write('tampered.backup', tampered.join('\n')),
        'tampered row',
        1,
        /restore refused: the restored ledger's digest .* is not the backup's/,
      ],
    ];
    const dst = await emptyDb('damaged');
    for (const [p, what, code, re] of cases) {
      const r = await canon(['restore', p], { url: dst.url });
      expect(r.exitCode, `${what}: ${r.stderr}`).toBe(code);
      expect(oneLineError(r), what).toMatch(re);
      const n = (
        await dst.pool
          .query(
            `select (select count(*) from canon.events)::int as events, (select count(*) from canon.jobs)::int as jobs`,
          )
          .catch(() => ({ rows: [{ events: 0, jobs: 0 }] }))
      ).rows[0];
      expect(n, what).toEqual({ events: 0, jobs: 0 });
    }
    // after all that, the real backup still restores into the same database
    const ok = await canon(['restore', file], { url: dst.url });
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(await digest(dst)).toBe(await digest(src));
    expect(oneLineError(await canon(['restore', path.join(dir, 'missing.backup')], { url: dst.url }))).toMatch(
      /does not exist/,
    );
    expect(oneLineError(await canon(['backup', path.join(dir, 'no-such-dir', 'x.backup')], { url: src.url }))).toMatch(
      /does not exist/,
    );
  });
});

it('names every table it backs up with its row count', async () => {
  const p = path.join(dir, `count-${randomUUID()}.backup`);
  expect((await canon(['backup', p], { url: src.url })).exitCode).toBe(0);
  const header = JSON.parse(zlib.gunzipSync(fs.readFileSync(p)).toString('utf8').split('\n')[0]);
  expect(header.tables.map((t: { name: string }) => t.name).sort()).toEqual((await tables(src)).sort());
  for (const t of header.tables) {
    expect(t.rows, t.name).toBe(Number((await src.pool.query(`select count(*) from ${t.name}`)).rows[0].count));
  }
});
