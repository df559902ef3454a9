// A PostgreSQL cluster from Debian's own packages (postgresql-15, installed by `.ci/run`), with
// the server's default settings: Debian builds it with LLVM, so `jit = on` and JIT compiles any
// statement whose plan costs more than jit_above_cost (100000), as on most servers users run.
// The embedded Postgres of the other tests has no JIT provider, so only this server shows what
// JIT costs canon. pg_stat_statements (track = all) records JIT work per statement, nested
// statements (those inside canon's functions) included.
// The cluster is the test's own: a scratch folder under os.tmpdir(), a free port on 127.0.0.1,
// no Unix socket, run as the postgres OS user when the tests run as root (Postgres refuses
// root). It never touches a `main` cluster the package may have created (5432,
// /var/run/postgresql, /etc/postgresql).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './server.js';

export interface DebianPostgres {
  version: number;
  /** the folder of initdb, pg_ctl and postgres */
  bin: string;
  /** the scratch folder: data directory, server log, password file */
  dir: string;
  port: number;
  url(db?: string): string;
  /** the end of the server's log, for failure messages */
  logTail(lines?: number): string;
  /** stops the server and removes its scratch folder */
  stop(): Promise<void>;
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

/** The postgres OS user when running as root (Postgres will not run as root), else nobody. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    return { uid, gid };
  } catch {
    throw new Error(
      'running as root and there is no postgres OS user to run Debian PostgreSQL as (the postgresql-common package creates it)',
    );
  }
}

function run(
  cmd: string,
  args: string[],
  as: { uid: number; gid: number } | undefined,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    // PG* variables of the caller's environment must not point the tools at another cluster
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG')));
    const child = spawn(cmd, args, {
      ...as,
      env: { ...env, LC_ALL: 'C', LANG: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (e) => resolve({ code: 127, out: String(e) }));
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
  });
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
  const as = runAs();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `canon-debian-pg${version}-${opts.label ?? 'test'}-`));
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'postgres.log');
  const password = randomBytes(18).toString('base64url');
  const pwfile = path.join(dir, 'pwfile');
  fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (as) {
    fs.chownSync(dir, as.uid, as.gid);
    fs.chownSync(pwfile, as.uid, as.gid);
  }
  const logTail = (lines = 40) => {
    try {
      return fs.readFileSync(log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no server log)';
    }
  };
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });

  const init = await run(
    p.initdb,
    ['-D', data, '-U', 'postgres', '--pwfile', pwfile, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C'],
    as,
  );
  if (init.code !== 0) {
    cleanup();
    throw new Error(`initdb of Debian PostgreSQL ${version} failed:\n${init.out}`);
  }
  fs.rmSync(pwfile);
  // Appended last, so these win over the defaults; everything else (jit included) is the
  // package's default. TCP on loopback only: no socket in /var/run/postgresql, no path limit.
  const settings = (port: number) =>
    [
      '',
      '# canon test harness (test/support/debian-postgres.ts)',
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      "unix_socket_directories = ''",
      "shared_preload_libraries = 'pg_stat_statements'",
      'pg_stat_statements.track = all',
      'compute_query_id = on',
      '',
    ].join('\n');
  const conf = path.join(data, 'postgresql.conf');
  const base = fs.readFileSync(conf, 'utf8');

  // A free port can be taken between the probe and the server's bind: try a few.
  let port = 0;
  let last = '';
  for (let attempt = 0; attempt < 4; attempt++) {
    port = await freePort();
    fs.writeFileSync(conf, base + settings(port));
    const start = await run(p.pgCtl, ['-D', data, '-l', log, '-w', '-t', '60', 'start'], as);
    if (start.code === 0) {
      last = '';
      break;
    }
    last = `${start.out}\n${logTail()}`;
    await run(p.pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop'], as);
    if (!/address already in use|could not bind/i.test(last)) break;
  }
  if (last) {
    cleanup();
    throw new Error(`Debian PostgreSQL ${version} did not start:\n${last}`);
  }

  const url = (db = 'postgres') => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`;
  let stopped = false;
  return {
    version,
    bin: p.bin,
    dir,
    port,
    url,
    logTail,
    async stop() {
      if (stopped) return;
      stopped = true;
      const r = await run(p.pgCtl, ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop'], as);
      if (r.code !== 0) await run(p.pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop'], as);
      cleanup();
    },
  };
}
