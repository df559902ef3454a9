// A primary and its streaming standby, both Debian's PostgreSQL 15, in scratch folders of the
// test's own on free ports of 127.0.0.1 (as root, run as the postgres OS user). The primary is
// a scratch cluster (src/db/cluster.ts) with wal_level = replica; the standby is a
// `pg_basebackup -R` copy of it (which writes primary_conninfo and standby.signal), started
// with hot_standby on, so it answers reads and refuses writes while it replays.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  pgCtlStop,
  postgresOsUser,
  readLogTail,
  runPgTool,
  type ScratchCluster,
  startOnFreePort,
  startScratchCluster,
} from '../../src/db/cluster.js';
import { debianPostgresMissing, debianPostgresPaths } from './debian-postgres.js';

export interface Standby {
  port: number;
  /** a URL for user postgres (the primary's password) on the standby */
  url(database?: string): string;
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

export interface StreamingPair {
  primary: ScratchCluster;
  standby: Standby;
  /** stops both servers and removes their folders; once */
  stop(): Promise<void>;
}

/** Why the pair cannot be started here (Debian's PostgreSQL 15 missing), or undefined. */
export const streamingPairMissing = () => debianPostgresMissing(15);

export async function startStreamingPair(label = 'replica'): Promise<StreamingPair> {
  const why = streamingPairMissing();
  if (why) throw new Error(why);
  const p = debianPostgresPaths(15);
  const primary = await startScratchCluster({
    bin: p.bin,
    name: 'Debian PostgreSQL 15 primary',
    prefix: `canon-pg15-primary-${label}-`,
    socket: false,
    settings: [
      '# canon test harness (test/support/streaming-standby.ts)',
      'wal_level = replica',
      'max_wal_senders = 4',
    ],
  });
  const tool = { as: postgresOsUser() };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `canon-pg15-standby-${label}-`));
  if (tool.as) fs.chownSync(dir, tool.as.uid, tool.as.gid);
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'postgres.log');
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  try {
    // -R writes standby.signal and primary_conninfo (with this password) into the copy
    const conn = `host=127.0.0.1 port=${primary.port} user=postgres password=${primary.password}`;
    const copy = await runPgTool(
      path.join(p.bin, 'pg_basebackup'),
      ['-d', conn, '-D', data, '-R', '-X', 'stream', '-c', 'fast'],
      tool,
    );
    if (copy.code !== 0) throw new Error(`pg_basebackup of the primary failed: ${copy.out.trim()}`);
    fs.appendFileSync(path.join(data, 'postgresql.conf'), '\nhot_standby = on\n');
    const port = await startOnFreePort({ pgCtl: p.pgCtl, data, log, socketDir: '', name: 'the standby' }, tool);
    let stopped = false;
    const standby: Standby = {
      port,
      url: (database = 'postgres') =>
        `postgres://postgres:${encodeURIComponent(primary.password)}@127.0.0.1:${port}/${database}`,
      logTail: (lines = 40) => readLogTail(log, lines),
      async stop() {
        if (stopped) return;
        stopped = true;
        const r = await pgCtlStop(p.pgCtl, data, 'fast', tool);
        if (r.code !== 0) await pgCtlStop(p.pgCtl, data, 'immediate', tool);
        remove();
      },
    };
    return {
      primary,
      standby,
      async stop() {
        await standby.stop();
        await primary.stop();
      },
    };
  } catch (e) {
    remove();
    await primary.stop();
    throw e;
  }
}
