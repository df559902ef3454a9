// The ledger export and its digest. `canon export` and `canon backup` read up to a safe cut
// (src/proof/cut.ts) in short statements, so no snapshot is held for the whole run; restore
// checks what it loaded inside its own transaction, with a cursor.
import { createHash, type Hash } from 'node:crypto';
import type pg from 'pg';
import { EXPORT_SQL } from '../sql/export.js';
import { ledgerCut } from './cut.js';

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

/** The digest of export lines fed in position order, with the counts. */
export class LedgerDigest {
  private hash: Hash = createHash('sha256');
  events = 0;
  entities = 0;
  /** an independent copy that goes on from here (backup hashes the ledger twice and compares) */
  fork(): LedgerDigest {
    const d = new LedgerDigest();
    d.hash = this.hash.copy();
    d.events = this.events;
    d.entities = this.entities;
    return d;
  }
  add(line: string, seq: number): void {
    this.hash.update(`${line}\n`);
    this.events++;
    if (seq === 1) this.entities++; // an entity's first event: one per entity in the export
  }
  summary(): ExportSummary {
    return { digest: this.hash.copy().digest('hex'), events: this.events, entities: this.entities };
  }
}

export interface LedgerRow {
  position: string;
  seq: number;
  line: string;
  row?: string;
}

const CHUNK = 5000;

/**
 * The events through `cut` in position order, a chunk per statement (each its own short
 * transaction). With `withRows`, each also carries the row as backup stores it.
 */
export async function* throughCut(
  pool: pg.Pool,
  cut: number,
  withRows = false,
): AsyncGenerator<LedgerRow[], void, undefined> {
  let after = 0;
  for (;;) {
    const rows = (await pool.query(withRows ? EXPORT_SQL.chunkWithRows : EXPORT_SQL.chunk, [after, cut, CHUNK]))
      .rows as LedgerRow[];
    if (!rows.length) return;
    yield rows;
    after = Number(rows[rows.length - 1].position);
  }
}

/** Progress of a walk by position: [done, total] counted in positions from the first one. */
export async function positionCounter(pool: pg.Pool, cut: number): Promise<(position: string) => [number, number]> {
  const first = Number((await pool.query(EXPORT_SQL.firstPosition)).rows[0].position);
  const total = first ? Math.max(0, cut - first + 1) : 0;
  return (position) => [Math.min(total, Number(position) - first + 1), total];
}

/** The ledger through a safe cut taken now: no snapshot is held for the run. */
export async function exportLedgerCut(
  pool: pg.Pool,
  opts: ExportOptions = {},
): Promise<ExportSummary & { through_position: number }> {
  const cut = await ledgerCut(pool);
  const digest = new LedgerDigest();
  const at = await positionCounter(pool, cut);
  for await (const rows of throughCut(pool, cut)) {
    for (const r of rows) {
      digest.add(r.line, r.seq);
      if (opts.onLine) await opts.onLine(r.line);
    }
    opts.onProgress?.(...at(rows[rows.length - 1].position));
  }
  return { ...digest.summary(), through_position: cut };
}

/** Streams the whole ledger through a cursor on `client`, which must already be inside a transaction. */
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
