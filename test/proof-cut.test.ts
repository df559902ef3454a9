// Readers that do not pin the MVCC horizon, on a real Postgres: `canon export` and `canon
// backup` read the ledger up to a safe cut in short statements. Paused between chunks, their
// sessions hold no snapshot (pg_stat_activity backend_xmin) and no open transaction; events
// appended meanwhile past the cut are left out; the cut waits for a writer that may still
// commit below it; a backup made that way restores with the same digest, a clean audit and
// clean status.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvent } from '../src/ledger.js';
import { backup } from '../src/proof/backup.js';
import { ledgerCut } from '../src/proof/cut.js';
import { exportLedgerCut } from '../src/proof/export.js';
import { canon, createEmptyDb, createTestDb, type TestDb } from './helpers.js';

const APP = 'canon-cut-test';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-cut-'));
let db: TestDb;
let reader: pg.Pool;
const others: TestDb[] = [];

/** Sessions of the reader's pool that hold a snapshot or sit inside a transaction. */
const pinning = async () =>
  (
    await db.pool.query(
      `select pid, state, backend_xmin::text as xmin from pg_stat_activity
        where application_name = $1 and (backend_xmin is not null or state like 'idle in transaction%')`,
      [APP],
    )
  ).rows;
const maxPosition = async () => Number((await db.pool.query('select max(position) as m from canon.events')).rows[0].m);

/** A promise the reader waits on, and the function that lets it go. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  let arrived!: () => void;
  const reached = new Promise<void>((r) => {
    arrived = r;
  });
  return { opened, open, reached, arrive: () => arrived() };
}

beforeAll(async () => {
  db = await createTestDb('cut');
  // more than one chunk (5,000 events) in one statement
  await db.pool.query(
    `select canon.append_event('cut-' || (i % 300), 'note.added', jsonb_build_object('i', i)) from generate_series(1, 6200) i`,
  );
  reader = new pg.Pool({ connectionString: db.url, application_name: APP, max: 3 });
});
afterAll(async () => {
  await reader.end();
  await db.end();
  for (const d of others) await d.end();
});

describe('export', () => {
  it('holds no snapshot between chunks, and leaves out what was appended past its cut', async () => {
    const lines: string[] = [];
    const g = gate();
    const g2 = gate();
    const cutBefore = await maxPosition();
    const run = exportLedgerCut(reader, {
      onLine: async (l) => {
        lines.push(l);
        if (lines.length === 1) {
          g.arrive();
          await g.opened;
        }
        if (lines.length === 5001) {
          g2.arrive();
          await g2.opened;
        }
      },
    });
    await g.reached;
    expect(await pinning()).toEqual([]);
    const late = await appendEvent(db.pool, { entityId: 'cut-late', kind: 'note.added' });
    g.open();
    await g2.reached; // in the second chunk, read by a statement of its own
    expect(await pinning()).toEqual([]);
    g2.open();
    const s = await run;
    expect(s.through_position).toBe(cutBefore);
    expect(late.position).toBeGreaterThan(s.through_position);
    expect(lines.some((l) => JSON.parse(l).entity_id === 'cut-late')).toBe(false);
    expect(s.events).toBe(6200);
    expect(s.entities).toBe(300);
    expect(s.digest).toBe(
      createHash('sha256')
        .update(lines.map((l) => `${l}\n`).join(''))
        .digest('hex'),
    );
    // the same cut read again gives the same bytes: the ledger through it cannot change
    const positions = lines.map((l) => JSON.parse(l).position as number);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
  });

  it('the cut waits for a writer that may still commit below it, and names it when it waits too long', async () => {
    const writer = await db.pool.connect();
    try {
      await writer.query('begin');
      const low = (await writer.query(`select position from canon.append_event('cut-w1', 'note.added')`)).rows[0]
        .position;
      const pid = (await writer.query('select pg_backend_pid() as pid')).rows[0].pid;
      const high = await appendEvent(db.pool, { entityId: 'cut-w2', kind: 'note.added' });
      expect(high.position).toBeGreaterThan(Number(low));
      await expect(ledgerCut(reader, { timeoutMs: 300 })).rejects.toThrow(new RegExp(`pid ${pid}\\b`));
      let committed = false;
      const cut = ledgerCut(reader).then((p) => ({ p, committed }));
      await new Promise((r) => setTimeout(r, 300));
      committed = true;
      await writer.query('commit');
      const got = await cut;
      expect(got.committed).toBe(true); // it returned only once the writer had ended
      expect(got.p).toBeGreaterThanOrEqual(high.position);
      const s = await exportLedgerCut(reader);
      expect(s.through_position).toBeGreaterThanOrEqual(high.position);
    } finally {
      writer.release();
    }
    // the export through the cut is the whole ledger when nothing is in flight
    const r = await canon(['export', '--hash', '--json'], { url: db.url });
    const total = Number((await db.pool.query('select count(*) from canon.events')).rows[0].count);
    expect(JSON.parse(r.stdout)).toMatchObject({ events: total, through_position: await maxPosition() });
  });
});

describe('backup', () => {
  it('holds a snapshot only while it reads the other tables; restores with the same digest, clean audit and status', async () => {
    const file = path.join(dir, 'cut.backup');
    const seen: Record<string, { pinned: number }> = {};
    let during: { position: number } | undefined;
    let after: { position: number } | undefined;
    await backup(reader, file, async (phase) => {
      if (seen[phase]) return;
      seen[phase] = { pinned: (await pinning()).length };
      // appended while the digest is taken (before the snapshot): past the cut, but in the snapshot's tail
      if (phase === 'ledger digest')
        during = await appendEvent(db.pool, { entityId: 'cut-during', kind: 'note.added' });
      // appended after the snapshot: not in this backup
      if (phase === 'ledger rows') after = await appendEvent(db.pool, { entityId: 'cut-after', kind: 'note.added' });
    });
    // the snapshot is held for the other tables (the check sees it), never for the ledger
    expect(seen).toEqual({ 'ledger digest': { pinned: 0 }, rows: { pinned: 1 }, 'ledger rows': { pinned: 0 } });

    const dst = await createEmptyDb('cutrestore');
    others.push(dst);
    const r = await canon(['restore', file, '--json'], { url: dst.url });
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await canon(['audit', 'verify'], { url: dst.url })).exitCode).toBe(0);
    expect((await canon(['status', 'verify'], { url: dst.url })).exitCode).toBe(0);
    const has = async (p: number) =>
      (await dst.pool.query('select 1 from canon.events where position = $1', [p])).rows.length === 1;
    expect(await has(during!.position)).toBe(true);
    expect(await has(after!.position)).toBe(false);
    // the restored heads match the restored events (the snapshot and the ledger rows agree)
    const heads = await dst.pool.query(
      `select count(*)::int as n from canon.entities e
        where e.head_seq <> coalesce((select max(seq) from canon.events v where v.entity_id = e.id), 0)`,
    );
    expect(heads.rows[0].n).toBe(0);
  });
});
