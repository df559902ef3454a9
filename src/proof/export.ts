// The ledger export and its digest. Callers own the transaction: the export must run inside
// one snapshot (REPEATABLE READ) so that the lines and the digest describe one moment, and
// backup and restore compute it inside their own snapshot.
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { EXPORT_SQL } from '../sql/export.js';
import { inSnapshot } from './snapshot.js';

export interface ExportSummary {
  /** SHA-256 (hex) of the export: every line followed by "\n" */
  digest: string;
  events: number;
  entities: number;
}

export interface ExportOptions {
  /** receives each line (without its newline); may return a promise to apply backpressure */
  onLine?: (line: string) => void | Promise<void>;
  onProgress?: (done: number, total: number) => void;
}

/** Streams the ledger through a cursor on `client`, which must already be inside a transaction. */
export async function exportLedger(client: pg.ClientBase, opts: ExportOptions = {}): Promise<ExportSummary> {
  const counts = (await client.query(EXPORT_SQL.count)).rows[0];
  const total = Number(counts.events);
  const hash = createHash('sha256');
  let done = 0;
  await client.query(EXPORT_SQL.declare);
  for (;;) {
    const rows = (await client.query(EXPORT_SQL.fetch)).rows as { line: string }[];
    if (rows.length === 0) break;
    for (const r of rows) {
      hash.update(`${r.line}\n`);
      if (opts.onLine) await opts.onLine(r.line);
    }
    done += rows.length;
    opts.onProgress?.(done, total);
  }
  await client.query(EXPORT_SQL.close);
  return { digest: hash.digest('hex'), events: done, entities: Number(counts.entities) };
}

/** The export in a read-only snapshot of its own. */
export async function exportLedgerSnapshot(pool: pg.Pool, opts: ExportOptions = {}): Promise<ExportSummary> {
  return inSnapshot(pool, (c) => exportLedger(c, opts));
}
