// A partitioned ledger with archival (decision 0034): canon load spreads a history over months,
// one entity of the oldest month gets a later event (its chain then crosses the cut), and that
// month is archived: its partition leaves the database, the file's SHA-256 is the recorded
// digest, audit verify and status verify stay clean (the crossing entity verifies from its
// archived head), trace says which part is archived. A changed file is refused; the original
// restores, verifies, and the ledger's export digest is what it was before the archive.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canon, createTestDb, oneLineError, type TestDb } from './helpers.js';

let db: TestDb;
let dir: string;
let month = '';
let crossing = '';
let digestBefore = '';
let eventsBefore = 0;

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const run = (args: string[]) => canon(args, { url: db.url });
const json = async (args: string[]) => {
  const r = await run([...args, '--json']);
  expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout);
};
const monthEvents = async (m: string) =>
  (
    await db.pool.query(
      `select count(*)::int as n from canon.events where created_at >= $1::date and created_at < $1::date + interval '1 month'`,
      [`${m}-01`],
    )
  ).rows[0].n as number;

beforeAll(async () => {
  db = await createTestDb('archive');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-archive-'));
  const load = await run([
    'load',
    '--entities',
    '60',
    '--jobs',
    '420',
    '--runs',
    '440',
    '--events',
    '480',
    '--days',
    '100',
  ]);
  expect(load.exitCode, load.stderr).toBe(0);
  month = (await db.pool.query(`select to_char(min(created_at) at time zone 'UTC', 'YYYY-MM') as m from canon.events`))
    .rows[0].m;
  crossing = (
    await db.pool.query(
      `select entity_id from canon.events where created_at < $1::date + interval '1 month' order by position limit 1`,
      [`${month}-01`],
    )
  ).rows[0].entity_id;
}, 180_000);

afterAll(async () => {
  await db?.end();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('canon archive', () => {
  it('the ledger is partitioned by month, the loaded months each in a partition of their own', async () => {
    const parts = (
      await db.pool.query(
        `select c.relname, (select count(*)::int from canon.events e where e.tableoid = c.oid) as n
           from pg_inherits i join pg_class c on c.oid = i.inhrelid
          where i.inhparent = 'canon.events'::regclass order by c.relname`,
      )
    ).rows as { relname: string; n: number }[];
    expect(parts.find((p) => p.relname === 'events_default')?.n).toBe(0);
    expect(parts.filter((p) => p.n > 0).length).toBeGreaterThanOrEqual(3);
    expect(parts.map((p) => p.relname)).toContain(`events_${month.replace('-', '_')}`);
  });

  it('refuses a month whose entities still have work, and months that cannot be archived', async () => {
    // a later event for an entity of the oldest month: its chain now crosses the cut, and its decision is queued
    const append = await run(['events', 'append', crossing, 'document.commented', '--payload', '{"note":"later"}']);
    expect(append.exitCode, append.stderr).toBe(0);
    const busy = await run(['archive', month, '--out', path.join(dir, 'busy.jsonl')]);
    expect(busy.exitCode).toBe(1);
    expect(oneLineError(busy)).toMatch(/still have jobs queued or running/);
    expect(fs.existsSync(path.join(dir, 'busy.jsonl'))).toBe(false);
    const work = await run(['work', '--once']);
    expect(work.exitCode, work.stderr).toBe(0);

    const now = new Date();
    const current = `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
    for (const [args, re] of [
      [['archive', '2026-13'], /month must look like 2026-11/],
      [['archive', 'november'], /month must look like 2026-11/],
      [['archive', current], /is not over yet/],
      [['archive', '1999-01'], /has no partition of its own/],
      [['archive', 'restore', path.join(dir, 'nope.jsonl')], /cannot read .*nope\.jsonl: ENOENT/],
    ] as [string[], RegExp][]) {
      const r = await run(args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(oneLineError(r)).toMatch(re);
    }
  });

  it('archives the month: file with its digest and heads, partition gone, audit and status clean, trace says what is archived', async () => {
    digestBefore = (await json(['export', '--hash'])).digest;
    eventsBefore = (await json(['export', '--hash'])).events;
    const inMonth = await monthEvents(month);
    expect(inMonth).toBeGreaterThan(0);
    const file = path.join(dir, `${month}.jsonl`);
    const s = await json(['archive', month, '--out', file]);
    expect(s).toMatchObject({ month, events: inMonth, file });
    expect(sha256(file)).toBe(s.sha256);
    expect(fs.readFileSync(file, 'utf8').trimEnd().split('\n')).toHaveLength(inMonth);
    const manifest = JSON.parse(fs.readFileSync(`${file}.manifest.json`, 'utf8'));
    expect(manifest).toMatchObject({ sha256: s.sha256, heads_sha256: s.heads_sha256, events: inMonth });
    expect(manifest.heads.map((h: { entity_id: string }) => h.entity_id)).toContain(crossing);

    expect(await monthEvents(month)).toBe(0);
    const gone = await db.pool.query(`select to_regclass($1) as t`, [`canon.events_${month.replace('-', '_')}`]);
    expect(gone.rows[0].t).toBeNull();
    const audit = await json(['audit', 'verify']);
    expect(audit).toMatchObject({ ok: true, events: eventsBefore - inMonth });
    const status = await run(['status', 'verify']);
    expect(status.exitCode, status.stdout).toBe(0);

    const t = await json(['trace', crossing]);
    expect(t.archived).toEqual([expect.objectContaining({ month, first_seq: 1, file_name: file })]);
    expect(t.counts.events).toBeGreaterThan(0);
    const text = await run(['trace', crossing]);
    expect(text.stdout).toMatch(new RegExp(`^archived seq 1–\\d+ \\(${month}, `, 'm'));
    const list = await json(['archive', 'list']);
    expect(list.archives).toEqual([expect.objectContaining({ sha256: s.sha256, restored_at: null })]);
  });

  it('refuses a changed file, then restores the original: digest checked, chains verified, export as before', async () => {
    const file = path.join(dir, `${month}.jsonl`);
    const changed = path.join(dir, 'changed.jsonl');
    fs.writeFileSync(changed, fs.readFileSync(file, 'utf8').replace('"seq": 1', '"seq": 9'));
    const refused = await run(['archive', 'restore', changed]);
    expect(refused.exitCode).toBe(1);
    expect(oneLineError(refused)).toMatch(/no archived month of this ledger has the digest/);
    expect(await monthEvents(month)).toBe(0);

    const r = await json(['archive', 'restore', file]);
    expect(r).toMatchObject({ month, sha256: sha256(file), verified: true });
    const after = await json(['export', '--hash']);
    expect(after).toMatchObject({ digest: digestBefore, events: eventsBefore });
    expect(await json(['audit', 'verify'])).toMatchObject({ ok: true, events: eventsBefore });
    expect((await run(['status', 'verify'])).exitCode).toBe(0);
    expect((await json(['trace', crossing])).archived).toEqual([]);
    const again = await run(['archive', 'restore', file]);
    expect(again.exitCode).toBe(1);
  });

  it('audit verify catches a kept event that no longer links to its archived head', async () => {
    const file = path.join(dir, `${month}-again.jsonl`);
    await json(['archive', month, '--out', file]);
    expect((await json(['audit', 'verify'])).ok).toBe(true);
    await db.pool.query(
      `update canon.archived_heads set last_hash = sha256(last_hash) where entity_id = $1 and month = $2::date`,
      [crossing, `${month}-01`],
    );
    const audit = await run(['audit', 'verify', '--json']);
    expect(audit.exitCode).toBe(1);
    expect(JSON.parse(audit.stdout).breaks).toEqual([
      expect.objectContaining({ entity_id: crossing, problem: 'prev_hash_mismatch' }),
    ]);
    // and the file no longer restores against the changed record
    const r = await run(['archive', 'restore', file]);
    expect(r.exitCode).toBe(1);
    expect(oneLineError(r)).toMatch(/heads do not match the recorded ones: not restored/);
  });
});
