// `canon backup`: everything in schema canon, consistent as of one moment, without holding a
// snapshot for the whole run (docs/decisions/0031-readers-cut-the-ledger.md). The ledger,
// the one table that grows without bound, is append-only: it is read up to a safe cut in
// short statements, before and after a snapshot that reads everything else and the few
// events appended past the cut meanwhile. The file holds exactly the events that snapshot
// sees, with the digest of their export (restore checks it); the ledger is hashed on both
// passes and the backup is kept only if they agree.
import fs from 'node:fs';
import zlib from 'node:zlib';
import type pg from 'pg';
import { CanonError, EXIT } from '../errors.js';
import { version } from '../paths.js';
import { BACKUP_SQL } from '../sql/backup.js';
import { EXPORT_SQL } from '../sql/export.js';
import { BACKUP_FORMAT, type BackupHeader, endMarker, loadOrder, tableMarker } from './backup-format.js';
import { ledgerCut } from './cut.js';
import { LedgerDigest, type LedgerRow, positionCounter, throughCut } from './export.js';
import { atomicFile } from './files.js';

/** Called between chunks; a returned promise is awaited (a caller may pace or observe the run). */
export type BackupProgress = (phase: string, done: number, total: number) => void | Promise<void>;

export interface BackupSummary {
  file: string;
  bytes: number;
  header: BackupHeader;
}

const LEDGER = 'canon.events';

export async function backup(pool: pg.Pool, file: string, progress?: BackupProgress): Promise<BackupSummary> {
  const out = atomicFile(file, () => zlib.createGzip({ level: 6 }));
  try {
    // 1. the cut, and the digest of the ledger through it (short statements)
    const cut = await ledgerCut(pool);
    const first = new LedgerDigest();
    await walkLedger(pool, cut, false, 'ledger digest', progress, (rows) => {
      for (const r of rows) first.add(r.line, r.seq);
    });
    // 2. one snapshot for the rest: the other tables, and the events past the cut it sees
    const { header, tail } = await inStateSnapshot(pool, cut, first, out, progress);
    // 3. the ledger's rows through the cut (short statements again), then the tail
    await out.write(`${tableMarker(LEDGER)}\n`);
    const second = new LedgerDigest();
    const write = async (rows: LedgerRow[]) => {
      for (const r of rows) second.add(r.line, r.seq);
      if (rows.length) await out.write(`${rows.map((x) => x.row).join('\n')}\n`);
    };
    await walkLedger(pool, cut, true, 'ledger rows', progress, write);
    await write(tail);
    if (second.summary().digest !== header.ledger.digest) {
      throw new CanonError(
        `backup refused: the ledger read twice gave two digests (${header.ledger.digest}, ${second.summary().digest}): was it edited with its triggers bypassed (canon audit attempts)? Nothing was written`,
        EXIT.FAILURE,
      );
    }
    await out.write(`${endMarker(Object.fromEntries(header.tables.map((t) => [t.name, t.rows])))}\n`);
    await out.commit();
    return { file, bytes: fs.statSync(file).size, header };
  } catch (e) {
    out.abort();
    throw e;
  }
}

/** The events through the cut, chunk by chunk, each read in a statement of its own. */
async function walkLedger(
  pool: pg.Pool,
  cut: number,
  withRows: boolean,
  phase: string,
  progress: BackupProgress | undefined,
  each: (rows: LedgerRow[]) => void | Promise<void>,
): Promise<void> {
  const at = await positionCounter(pool, cut);
  for await (const rows of throughCut(pool, cut, withRows)) {
    await each(rows);
    await progress?.(phase, ...at(rows[rows.length - 1].position));
  }
}

/**
 * Inside one read-only REPEATABLE READ transaction: the events past the cut that it sees (the
 * ledger then holds exactly the events this snapshot sees: every one through the cut had
 * committed before it began), the header (with the ledger's digest: `through` plus that tail),
 * and the rows of every other table, written to `out`. The ledger's own rows come after.
 */
async function inStateSnapshot(
  pool: pg.Pool,
  cut: number,
  through: LedgerDigest,
  out: ReturnType<typeof atomicFile>,
  progress: BackupProgress | undefined,
): Promise<{ header: BackupHeader; tail: LedgerRow[] }> {
  const c = await pool.connect();
  try {
    await c.query('begin isolation level repeatable read read only');
    const tail = (await c.query(EXPORT_SQL.tail, [cut])).rows as LedgerRow[];
    const ledger = through.fork();
    for (const r of tail) ledger.add(r.line, r.seq);
    const catalog = (await c.query(BACKUP_SQL.tables)).rows as { name: string; columns: string[]; key: string[] }[];
    const fks = (await c.query(BACKUP_SQL.foreignKeys)).rows as { child: string; parent: string }[];
    if (fks.some((f) => f.parent === LEDGER)) {
      throw new CanonError(`backup cannot order a table that references ${LEDGER} after it`, EXIT.FAILURE);
    }
    // the ledger last: its rows are read after this snapshot ends (nothing references it)
    const order = [
      ...loadOrder(
        catalog.map((t) => t.name).filter((n) => n !== LEDGER),
        fks,
      ),
      LEDGER,
    ];
    const tables = [];
    for (const name of order) {
      const t = catalog.find((x) => x.name === name)!;
      const rows = name === LEDGER ? ledger.events : Number((await c.query(BACKUP_SQL.rowCount(name))).rows[0].n);
      tables.push({ name, columns: t.columns, key: t.key, rows });
    }
    const sequences = [];
    for (const { name } of (await c.query(BACKUP_SQL.sequences)).rows as { name: string }[]) {
      const s = (await c.query(BACKUP_SQL.sequenceState(name))).rows[0];
      sequences.push({ name, last_value: s.last_value, is_called: s.is_called });
    }
    const header: BackupHeader = {
      format: BACKUP_FORMAT,
      created_at: new Date().toISOString(),
      canon_version: version,
      server_version: (await c.query(BACKUP_SQL.serverVersion)).rows[0].version,
      migrations: (await c.query(BACKUP_SQL.appliedMigrations)).rows.map((m) => ({
        id: Number(m.id),
        name: m.name,
        checksum: m.checksum,
      })),
      ledger: ledger.summary(),
      tables: tables.map(({ name, columns, rows }) => ({ name, columns, rows })),
      sequences,
    };
    await out.write(`${JSON.stringify(header)}\n`);
    const total = tables.reduce((n, t) => n + (t.name === LEDGER ? 0 : t.rows), 0);
    let done = 0;
    for (const t of tables) {
      if (t.name === LEDGER) continue;
      await out.write(`${tableMarker(t.name)}\n`);
      await c.query(BACKUP_SQL.declareRows(t.name, t.key));
      for (;;) {
        const rows = (await c.query(BACKUP_SQL.fetchRows)).rows as { row: string }[];
        if (!rows.length) break;
        await out.write(`${rows.map((r) => r.row).join('\n')}\n`);
        done += rows.length;
        await progress?.('rows', done, total);
      }
      await c.query(BACKUP_SQL.closeRows);
    }
    await c.query('commit');
    return { header, tail };
  } catch (e) {
    await c.query('rollback').catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}
