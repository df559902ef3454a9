// `canon restore`: a backup into an empty database. The schema comes from canon's own
// migrations (applied first, and required to be exactly the backup's, checksums included);
// the rows are loaded in one transaction with canon's triggers disabled, so the ledger's
// hashes, seqs and positions, the jobs' gateway marks and the status rows are loaded as they
// were, never recomputed. Before commit the ledger's export digest must equal the backup's and
// every hash chain must verify; otherwise nothing is kept.
import fs from 'node:fs';
import readline from 'node:readline';
import zlib from 'node:zlib';
import type pg from 'pg';
import { verifyChains } from '../audit.js';
import { CanonError, EXIT, usageError } from '../errors.js';
import { migrate } from '../migrate.js';
import { BACKUP_SQL } from '../sql/backup.js';
import {
  type BackupHeader,
  backupHeaderSchema,
  END_MARK,
  endMarkerSchema,
  TABLE_MARK,
  tableMarkerSchema,
} from './backup-format.js';
import { exportLedger } from './export.js';
import { zodProblem } from './zod-problem.js';

const BATCH_ROWS = 1000;
const BATCH_BYTES = 4 * 1024 * 1024;

export interface RestoreSummary {
  file: string;
  rows: Record<string, number>;
  ledger: { digest: string; events: number; entities: number };
  audit_ok: boolean;
  migrations_applied: number;
}

type Progress = (phase: string, done: number, total: number) => void;

function openLines(file: string): AsyncIterableIterator<string> {
  if (!fs.existsSync(file)) throw usageError(`backup file ${file} does not exist`);
  if (fs.statSync(file).isDirectory()) throw usageError(`backup file ${file} is a directory`);
  const gunzip = zlib.createGunzip();
  const source = fs.createReadStream(file);
  const input = source.pipe(gunzip);
  const rl = readline.createInterface({ input, crlfDelay: Infinity });
  // readline does not forward errors of its input: make a corrupt or non-gzip file end the loop with an error
  const it = rl[Symbol.asyncIterator]();
  let failure: Error | undefined;
  // an unreadable file too: an unhandled read error used to crash the process with a stack trace
  for (const stream of [source, gunzip]) {
    stream.on('error', (e: Error) => {
      failure ??= e;
      rl.close();
    });
  }
  return {
    async next() {
      let r: IteratorResult<string>;
      try {
        r = await it.next();
      } catch (e) {
        failure ??= e as Error;
        r = { done: true, value: undefined };
      }
      if (failure) throw usageError(`${file} is not a readable canon backup (${failure.message})`);
      return r;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  } as AsyncIterableIterator<string>;
}

async function readHeader(lines: AsyncIterableIterator<string>, file: string): Promise<BackupHeader> {
  const first = await lines.next();
  if (first.done) throw usageError(`${file} is empty: not a canon backup`);
  let raw: unknown;
  try {
    raw = JSON.parse(first.value);
  } catch {
    throw usageError(`${file} is not a canon backup (its first line is not JSON)`);
  }
  const parsed = backupHeaderSchema.safeParse(raw);
  if (!parsed.success) throw usageError(`${file} is not a canon backup: header ${zodProblem(parsed.error)}`);
  return parsed.data;
}

async function checkTarget(c: pg.ClientBase, h: BackupHeader): Promise<number> {
  const result = await migrate(c);
  const applied = (await c.query(BACKUP_SQL.appliedMigrations)).rows.map((m) => `${m.id}:${m.checksum}`);
  const wanted = h.migrations.map((m) => `${m.id}:${m.checksum}`);
  if (applied.join(',') !== wanted.join(',')) {
    const last = (xs: { id: number }[]) => (xs.length ? String(xs[xs.length - 1].id).padStart(4, '0') : 'none');
    throw usageError(
      `the backup was taken with canon migrations up to ${last(h.migrations)} (canon ${h.canon_version}); this database has ${applied.length} with other checksums or numbers: restore with the canon version that took the backup, then migrate`,
    );
  }
  const occ = (await c.query(BACKUP_SQL.occupancy)).rows[0];
  if (Number(occ.events) || Number(occ.jobs) || Number(occ.entities)) {
    throw usageError(
      `the target database is not empty (${occ.events} events, ${occ.jobs} jobs, ${occ.entities} entities): restore into an empty database`,
    );
  }
  return result.applied.length;
}

export async function restore(pool: pg.Pool, file: string, progress?: Progress): Promise<RestoreSummary> {
  const lines = openLines(file);
  const header = await readHeader(lines, file);
  const c = await pool.connect();
  try {
    const migrationsApplied = await checkTarget(c, header);
    const catalog = new Map(
      ((await c.query(BACKUP_SQL.tables)).rows as { name: string; columns: string[] }[]).map((t) => [t.name, t]),
    );
    for (const t of header.tables) {
      const target = catalog.get(t.name);
      if (!target) throw usageError(`backup table ${t.name} does not exist in this database`);
      const missing = t.columns.find((col) => !target.columns.includes(col));
      if (missing) throw usageError(`backup column ${t.name}.${missing} does not exist in this database`);
    }
    await c.query('begin');
    const names = [...catalog.keys()];
    for (const t of names) await c.query(BACKUP_SQL.disableTriggers(t));
    // rows the migrations seeded (settings, the decide job type…) give way to the backup's
    for (const t of [...header.tables].reverse()) await c.query(BACKUP_SQL.deleteAll(t.name));
    const rows = await loadRows(c, lines, header, file, progress);
    for (const s of header.sequences) {
      const known = (await c.query(BACKUP_SQL.sequences)).rows.some((r) => r.name === s.name);
      if (known) await c.query(BACKUP_SQL.setSequence, [s.name, s.last_value, s.is_called]);
    }
    for (const t of names) await c.query(BACKUP_SQL.enableTriggers(t));
    progress?.('verifying', 0, header.ledger.events);
    const ledger = await exportLedger(c, { onProgress: (d, t) => progress?.('verifying', d, t) });
    if (ledger.digest !== header.ledger.digest) {
      throw new CanonError(
        `restore refused: the restored ledger's digest ${ledger.digest} is not the backup's ${header.ledger.digest}; nothing was kept`,
        EXIT.FAILURE,
      );
    }
    const audit = await verifyChains(c, undefined, 10, (d, t) => progress?.('audit', d, t));
    if (!audit.ok) {
      const b = audit.breaks[0];
      throw new CanonError(
        `restore refused: the restored ledger does not verify (${b.entity_id} seq ${b.seq}: ${b.problem}); nothing was kept`,
        EXIT.FAILURE,
      );
    }
    await c.query('commit');
    return { file, rows, ledger, audit_ok: audit.ok, migrations_applied: migrationsApplied };
  } catch (e) {
    await c.query('rollback').catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}

async function loadRows(
  c: pg.ClientBase,
  lines: AsyncIterableIterator<string>,
  header: BackupHeader,
  file: string,
  progress?: Progress,
): Promise<Record<string, number>> {
  const total = header.tables.reduce((n, t) => n + t.rows, 0);
  const counts: Record<string, number> = {};
  let table: BackupHeader['tables'][number] | undefined;
  let batch: string[] = [];
  let bytes = 0;
  let done = 0;
  const flush = async () => {
    if (!table || !batch.length) return;
    await c.query(BACKUP_SQL.insertRows(table.name, table.columns), [`[${batch.join(',')}]`]);
    counts[table.name] = (counts[table.name] ?? 0) + batch.length;
    done += batch.length;
    batch = [];
    bytes = 0;
    progress?.('rows', done, total);
  };
  for await (const line of lines) {
    if (line.startsWith(TABLE_MARK)) {
      await flush();
      const m = tableMarkerSchema.safeParse(JSON.parse(line));
      table = m.success ? header.tables.find((t) => t.name === m.data['@table']) : undefined;
      if (!table) throw usageError(`${file}: a table marker names a table the header does not list`);
      counts[table.name] = 0;
    } else if (line.startsWith(END_MARK)) {
      await flush();
      const end = endMarkerSchema.safeParse(JSON.parse(line));
      if (!end.success) throw usageError(`${file}: the end line is malformed`);
      for (const t of header.tables) {
        if ((counts[t.name] ?? 0) !== t.rows || end.data.rows[t.name] !== t.rows) {
          throw usageError(
            `${file}: table ${t.name} has ${counts[t.name] ?? 0} rows, the header says ${t.rows}: the backup is damaged`,
          );
        }
      }
      return counts;
    } else {
      if (!table) throw usageError(`${file}: rows before the first table marker`);
      batch.push(line);
      bytes += line.length;
      if (batch.length >= BATCH_ROWS || bytes >= BATCH_BYTES) await flush();
    }
  }
  throw usageError(`${file} is truncated: it ends before its end line`);
}
