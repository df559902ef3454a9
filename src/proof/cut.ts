// A safe cut of the ledger: a position such that every event at or below it has committed and
// no event at or below it can appear later. The ledger is append-only, so reading up to the
// cut in many short transactions gives the same events as one snapshot would, without holding
// the MVCC horizon for the whole read (docs/decisions/0031-readers-cut-the-ledger.md).
//
// Positions are drawn from a sequence before an insert commits, so the newest committed
// position can have a lower one still in flight (and a rolled-back insert leaves a gap for
// good). The cut is the newest committed position once every transaction that was inserting
// into canon.events when it was read has ended: those are the only ones that can hold a
// position below it. Nothing is locked and nobody is blocked; the cut only waits.
import type pg from 'pg';
import { CanonError, EXIT } from '../errors.js';
import { EXPORT_SQL } from '../sql/export.js';

export interface CutOptions {
  /** give up after waiting this long for writers to end (default 60 s) */
  timeoutMs?: number;
}

export async function ledgerCut(pool: pg.Pool | pg.ClientBase, opts: CutOptions = {}): Promise<number> {
  const r = (await pool.query(EXPORT_SQL.cut)).rows[0] as { position: string; writers: string[] };
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let pause = 5;
  for (;;) {
    if (!r.writers.length) return Number(r.position);
    const open = (await pool.query(EXPORT_SQL.writersOpen, [r.writers])).rows as { pid: number }[];
    if (!open.length) return Number(r.position);
    if (Date.now() > deadline) {
      throw new CanonError(
        `the ledger cut waited ${Math.round((opts.timeoutMs ?? 60_000) / 1000)}s for transactions writing canon.events to end (pid ${[...new Set(open.map((o) => o.pid))].join(', ')}): end them or try again`,
        EXIT.DATABASE,
      );
    }
    await new Promise((res) => setTimeout(res, pause));
    pause = Math.min(pause * 2, 200);
  }
}
