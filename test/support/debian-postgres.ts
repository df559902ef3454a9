// A PostgreSQL cluster from Debian's own packages (postgresql-15, installed by `.ci/run`), with
// the server's default settings: Debian builds it with LLVM, so `jit = on` and JIT compiles any
// statement whose plan costs more than jit_above_cost (100000), as on most servers users run.
// The embedded Postgres of the other tests has no JIT provider, so only this server shows what
// JIT costs canon. pg_stat_statements (track = all) records JIT work per statement, nested
// statements (those inside canon's functions) included.
// The cluster is the test's own: a scratch folder under os.tmpdir(), a free port on 127.0.0.1,
// no Unix socket, run as the postgres OS user when the tests run as root (Postgres refuses
// root). It never touches a `main` cluster the package may have created (5432,
// /var/run/postgresql, /etc/postgresql). src/db/cluster.ts creates, starts and stops it.
import fs from 'node:fs';
import path from 'node:path';
import { type ScratchCluster, startScratchCluster } from '../../src/db/cluster.js';

/** The scratch cluster (its folder, port, URLs, log and stop(); see src/db/cluster.ts) and which PostgreSQL it is. */
export interface DebianPostgres extends Pick<ScratchCluster, 'dir' | 'port' | 'url' | 'logTail' | 'stop'> {
  version: number;
  /** the folder of initdb, pg_ctl and postgres */
  bin: string;
}

export function debianPostgresPaths(version = 15) {
  const root = `/usr/lib/postgresql/${version}`;
  return {
    bin: path.join(root, 'bin'),
    initdb: path.join(root, 'bin', 'initdb'),
    pgCtl: path.join(root, 'bin', 'pg_ctl'),
    llvmjit: path.join(root, 'lib', 'llvmjit.so'),
    pgStatStatements: path.join(root, 'lib', 'pg_stat_statements.so'),
  };
}

/** Why Debian's PostgreSQL cannot be used here, or undefined when it can. */
export function debianPostgresMissing(version = 15): string | undefined {
  const p = debianPostgresPaths(version);
  const missing = [p.initdb, p.pgCtl, p.llvmjit, p.pgStatStatements].filter((f) => !fs.existsSync(f));
  if (missing.length === 0) return undefined;
  return (
    `Debian PostgreSQL ${version} is not installed (missing: ${missing.join(', ')}). ` +
    `.ci/run installs postgresql-${version} from Debian; on a Debian or Ubuntu machine run .ci/run, ` +
    `or apt-get install postgresql-${version} (see .ci/run for how it keeps the package from starting a main cluster).`
  );
}

/**
 * Creates and starts a cluster of Debian's PostgreSQL `version` with its default settings plus
 * pg_stat_statements. Throws with a message naming `.ci/run` when the package is missing.
 */
export async function startDebianPostgres(opts: { version?: number; label?: string } = {}): Promise<DebianPostgres> {
  const version = opts.version ?? 15;
  const why = debianPostgresMissing(version);
  if (why) throw new Error(why);
  const p = debianPostgresPaths(version);
  // Appended to initdb's postgresql.conf; everything else (jit included) is the package's
  // default. TCP on 127.0.0.1 only (src/db/cluster.ts puts the port on the command line): no
  // socket in /var/run/postgresql, no socket path length limit.
  const cluster = await startScratchCluster({
    bin: p.bin,
    name: `Debian PostgreSQL ${version}`,
    prefix: `canon-debian-pg${version}-${opts.label ?? 'test'}-`,
    locale: 'C',
    socket: false,
    settings: [
      '# canon test harness (test/support/debian-postgres.ts)',
      "shared_preload_libraries = 'pg_stat_statements'",
      'pg_stat_statements.track = all',
      'compute_query_id = on',
    ],
  });
  return {
    version,
    bin: p.bin,
    dir: cluster.dir,
    port: cluster.port,
    url: cluster.url,
    logTail: cluster.logTail,
    stop: cluster.stop,
  };
}
