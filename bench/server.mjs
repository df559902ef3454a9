// `--server debian`: a throwaway cluster of the distribution's PostgreSQL 15 (the Debian
// package's binaries), in a scratch folder, with the settings initdb writes and nothing else
// changed, so JIT is on as on a stock Debian or Ubuntu server. Only the port, the address
// (127.0.0.1) and the socket folder (in the scratch folder) are given on the server's command
// line, so the system's own cluster and /var/run/postgresql are never touched. Postgres
// refuses to run as root: as root, initdb and the server run as the `postgres` OS user. The
// cluster comes from canon's src/db/cluster.ts (compiled to dist/ by `npm run bench`).
import fs from 'node:fs';
import path from 'node:path';
import { importDist } from './lib.mjs';

export const DEBIAN_BIN = '/usr/lib/postgresql/15/bin';

/** Starts the scratch cluster; resolves with its URL (database `postgres`), its folder, its port and `stop()` (stops it and removes the folder). */
export async function startDebianCluster() {
  const initdb = path.join(DEBIAN_BIN, 'initdb');
  if (!fs.existsSync(initdb)) throw new Error(`--server debian needs the postgresql-15 package (${initdb} not found)`);
  const { startScratchCluster } = await importDist('src/db/cluster.js');
  const cluster = await startScratchCluster({
    bin: DEBIAN_BIN,
    name: 'the Debian PostgreSQL 15 cluster',
    prefix: 'canon-bench-pg15-',
    // UTF8 in the machine's C.UTF-8 locale, as Debian's pg_createcluster sets it up here
    locale: 'C.UTF-8',
    // a private process group: a Ctrl-C meant for the benchmark must not reach the server
    // before the benchmark stops it
    detached: true,
  });
  return { url: cluster.url('postgres'), dir: cluster.dir, port: cluster.port, stop: cluster.stop };
}
