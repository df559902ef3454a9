// `canon backup`: everything in schema canon, read in one REPEATABLE READ snapshot, with the
// ledger's export digest from the same snapshot so that restore can prove it got it all back.
import fs from 'node:fs';
import zlib from 'node:zlib';
import type pg from 'pg';
import { version } from '../paths.js';
import { BACKUP_SQL } from '../sql/backup.js';
import { BACKUP_FORMAT, type BackupHeader, endMarker, loadOrder, tableMarker } from './backup-format.js';
import { exportLedger } from './export.js';
import { atomicFile } from './files.js';

export type BackupProgress = (phase: string, done: number, total: number) => void;

export interface BackupSummary {
  file: string;
  bytes: number;
  header: BackupHeader;
}

export async function backup(pool: pg.Pool, file: string, progress?: BackupProgress): Promise<BackupSummary> {
  const c = await pool.connect();
  const out = atomicFile(file, () => zlib.createGzip({ level: 6 }));
  try {
    await c.query('begin isolation level repeatable read read only');
    const ledger = await exportLedger(c, { onProgress: (d, t) => progress?.('ledger digest', d, t) });
    const catalog = (await c.query(BACKUP_SQL.tables)).rows as { name: string; columns: string[]; key: string[] }[];
    const fks = (await c.query(BACKUP_SQL.foreignKeys)).rows as { child: string; parent: string }[];
    const order = loadOrder(
      catalog.map((t) => t.name),
      fks,
    );
    const tables = [];
    for (const name of order) {
      const t = catalog.find((x) => x.name === name)!;
      tables.push({
        name,
        columns: t.columns,
        key: t.key,
        rows: Number((await c.query(BACKUP_SQL.rowCount(name))).rows[0].n),
      });
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
      ledger,
      tables: tables.map(({ name, columns, rows }) => ({ name, columns, rows })),
      sequences,
    };
    await out.write(`${JSON.stringify(header)}\n`);
    const total = tables.reduce((n, t) => n + t.rows, 0);
    let done = 0;
    const counts: Record<string, number> = {};
    for (const t of tables) {
      await out.write(`${tableMarker(t.name)}\n`);
      await c.query(BACKUP_SQL.declareRows(t.name, t.key));
      let n = 0;
      for (;;) {
        const rows = (await c.query(BACKUP_SQL.fetchRows)).rows as { row: string }[];
        if (!rows.length) break;
        await out.write(`${rows.map((r) => r.row).join('\n')}\n`);
        n += rows.length;
        done += rows.length;
        progress?.('rows', done, total);
      }
      await c.query(BACKUP_SQL.closeRows);
      counts[t.name] = n;
    }
    await out.write(`${endMarker(counts)}\n`);
    await c.query('commit');
    await out.commit();
    return { file, bytes: fs.statSync(file).size, header };
  } catch (e) {
    out.abort();
    await c.query('rollback').catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}
