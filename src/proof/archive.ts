// Archiving a past month of the ledger and restoring it (decision 0034). `archiveMonth` writes
// the month's partition as canonical lines (the lines `canon export` writes for those events),
// records the file's SHA-256 and each entity's head at the cut, then detaches and drops the
// partition: the file is what is kept. `canon audit verify` checks the kept events from those
// heads. `restoreArchive` finds the month by the file's digest, loads the lines into a table of
// their own, checks them against the recorded heads, attaches the table as the month's
// partition again and verifies every chain that passes through it before it commits.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import type pg from 'pg';
import { verifyChains } from '../audit.js';
import { tx } from '../db/connect.js';
import { CanonError, EXIT, usageError } from '../errors.js';
import { ARCHIVE_SQL, monthBounds, partitionName } from '../sql/archive.js';
import { atomicFile } from './files.js';

export interface Month {
  year: number;
  month: number;
}

/** "2026-11" → { year: 2026, month: 11 }; one clear line for anything else. */
export function parseMonth(raw: string): Month {
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(raw);
  if (!m) throw usageError(`month must look like 2026-11 (year-month), got "${raw.slice(0, 40)}"`);
  return { year: Number(m[1]), month: Number(m[2]) };
}

export const monthText = (m: Month) => `${m.year}-${String(m.month).padStart(2, '0')}`;
const monthDate = (m: Month) => `${monthText(m)}-01`;

export interface Head {
  entity_id: string;
  first_seq: number;
  last_seq: number;
  last_hash: string;
}

/** SHA-256 of the heads, one line each in entity order: what the archive record and its manifest carry. */
export function headsDigest(heads: Head[]): string {
  const h = createHash('sha256');
  for (const x of heads) h.update(`${x.entity_id}\t${x.first_seq}\t${x.last_seq}\t${x.last_hash}\n`);
  return h.digest('hex');
}

export interface ArchiveSummary {
  month: string;
  file: string;
  manifest: string;
  sha256: string;
  heads_sha256: string;
  events: number;
  entities: number;
  first_position: number | null;
  last_position: number | null;
}

/**
 * Archives `month` into `file` (and `file`.manifest.json). Refuses the current or a future
 * month, a month without its own partition, and a month with entities whose work is not done.
 */
export async function archiveMonth(pool: pg.Pool, month: Month, file: string): Promise<ArchiveSummary> {
  const p = partitionName(month);
  const now = new Date();
  if (month.year * 12 + month.month >= now.getUTCFullYear() * 12 + now.getUTCMonth() + 1)
    throw usageError(`${monthText(month)} is not over yet: only a past month can be archived`);
  const name = p.slice('canon.'.length);
  if (!(await pool.query(ARCHIVE_SQL.attached, [name])).rows[0].attached) {
    const rec = (await pool.query(ARCHIVE_SQL.record, [monthDate(month)])).rows[0];
    throw usageError(
      rec && !rec.restored_at
        ? `${monthText(month)} is already archived (${rec.file_name}, sha256 ${rec.sha256})`
        : `${monthText(month)} has no partition of its own in canon.events (its events, if any, are in canon.events_default)`,
    );
  }
  const busy = (await pool.query(ARCHIVE_SQL.busy(p))).rows[0];
  if (busy.n > 0)
    throw new CanonError(
      `${monthText(month)} is not archived: ${busy.n} of its entities still have jobs queued or running (first: ${busy.example}); a decision reads an entity's whole history`,
      EXIT.FAILURE,
    );
  return tx(pool, async (c) => {
    // nothing may reach the month between the export and the detach
    await c.query(ARCHIVE_SQL.lockTimeout);
    await c.query(ARCHIVE_SQL.lockPartition(p));
    const heads = (await c.query(ARCHIVE_SQL.heads(p))).rows as Head[];
    const check = await verifyChains(
      c,
      heads.map((h) => h.entity_id),
    );
    if (!check.ok)
      throw new CanonError(
        `${monthText(month)} is not archived: the chain of ${check.breaks[0].entity_id} does not verify (${check.breaks[0].problem}); run canon audit verify`,
        EXIT.FAILURE,
      );
    const counts = (await c.query(ARCHIVE_SQL.counts(p))).rows[0];
    const out = atomicFile(file);
    const hash = createHash('sha256');
    try {
      await c.query(ARCHIVE_SQL.declareLines(p));
      for (;;) {
        const rows = (await c.query(ARCHIVE_SQL.fetchLines)).rows as { line: string }[];
        if (rows.length === 0) break;
        const chunk = rows.map((r) => `${r.line}\n`).join('');
        hash.update(chunk);
        await out.write(chunk);
      }
      await c.query(ARCHIVE_SQL.closeLines);
      await out.commit();
    } catch (e) {
      out.abort();
      throw e;
    }
    const summary: ArchiveSummary = {
      month: monthText(month),
      file,
      manifest: `${file}.manifest.json`,
      sha256: hash.digest('hex'),
      heads_sha256: headsDigest(heads),
      events: Number(counts.events),
      entities: Number(counts.entities),
      first_position: counts.first_position,
      last_position: counts.last_position,
    };
    fs.writeFileSync(summary.manifest, `${JSON.stringify({ ...summary, heads }, null, 2)}\n`, { mode: 0o600 });
    await c.query(ARCHIVE_SQL.saveRecord, [
      monthDate(month),
      name,
      file,
      summary.sha256,
      summary.heads_sha256,
      summary.events,
      summary.entities,
      summary.first_position,
      summary.last_position,
    ]);
    await c.query(ARCHIVE_SQL.clearHeads, [monthDate(month)]);
    await c.query(ARCHIVE_SQL.saveHeads(p), [monthDate(month)]);
    await c.query(ARCHIVE_SQL.detach(p));
    await c.query(ARCHIVE_SQL.drop(p));
    return summary;
  });
}

/** SHA-256 of a file, streamed. */
async function fileDigest(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export interface RestoreSummary {
  month: string;
  file: string;
  sha256: string;
  events: number;
  entities: number;
  verified: boolean;
}

const BATCH = 2000;

/** Re-attaches the archived month whose file is `file`, after checking its digest and heads. */
export async function restoreArchive(pool: pg.Pool, file: string): Promise<RestoreSummary> {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw usageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!st.isFile()) throw usageError(`${file} is not a file`);
  const digest = await fileDigest(file);
  const rec = (await pool.query(ARCHIVE_SQL.byDigest, [digest])).rows[0];
  if (!rec)
    throw new CanonError(
      `no archived month of this ledger has the digest of ${file} (sha256 ${digest}): the file was changed, is already restored, or belongs to another ledger`,
      EXIT.FAILURE,
    );
  const [year, mon] = String(rec.month).split('-').map(Number);
  const month = { year, month: mon };
  const p = partitionName(month);
  return tx(pool, async (c) => {
    await c.query(ARCHIVE_SQL.lockTimeout);
    await c.query(ARCHIVE_SQL.createStandalone(p));
    let batch: unknown[] = [];
    let events = 0;
    const flush = async () => {
      if (batch.length) await c.query(ARCHIVE_SQL.insertLines(p), [JSON.stringify(batch)]);
      events += batch.length;
      batch = [];
    };
    const lines = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
    for await (const line of lines) {
      if (line === '') continue;
      batch.push(JSON.parse(line));
      if (batch.length >= BATCH) await flush();
    }
    await flush();
    const heads = (await c.query(ARCHIVE_SQL.heads(p))).rows as Head[];
    const recorded = (await c.query(ARCHIVE_SQL.recordedHeads, [rec.month])).rows as Head[];
    if (
      events !== Number(rec.events) ||
      headsDigest(heads) !== rec.heads_sha256 ||
      headsDigest(recorded) !== rec.heads_sha256
    )
      throw new CanonError(
        `${file} has the digest of ${rec.month.slice(0, 7)} but its heads do not match the recorded ones: not restored`,
        EXIT.FAILURE,
      );
    await c.query(ARCHIVE_SQL.attach(p, monthBounds(month)));
    await c.query(ARCHIVE_SQL.markRestored, [rec.month]);
    // every chain through the month, from its start (or an older archived head) to its head
    const check = await verifyChains(
      c,
      heads.map((h) => h.entity_id),
    );
    if (!check.ok)
      throw new CanonError(
        `${rec.month.slice(0, 7)} not restored: the chain of ${check.breaks[0].entity_id} does not verify with it (${check.breaks[0].problem})`,
        EXIT.FAILURE,
      );
    return {
      month: monthText(month),
      file,
      sha256: digest,
      events,
      entities: heads.length,
      verified: true,
    };
  });
}

export interface ArchivedPart {
  month: string;
  first_seq: number;
  last_seq: number;
  file_name: string;
}

/** The archived parts of one entity's chain, oldest first (empty when nothing of it is archived). */
export async function archivedParts(db: pg.Pool | pg.ClientBase, entity: string): Promise<ArchivedPart[]> {
  return (await db.query(ARCHIVE_SQL.entityArchived, [entity])).rows.map((r) => ({
    ...r,
    month: String(r.month).slice(0, 7),
  }));
}
