// `--server debian`: a throwaway cluster of the distribution's PostgreSQL 15 (the Debian
// package's binaries), in a scratch folder, with the settings initdb writes and nothing else
// changed, so JIT is on as on a stock Debian or Ubuntu server. Only the port and the socket
// folder are given on the command line (so the system's own cluster and /var/run/postgresql
// are never touched). Postgres refuses to run as root: as root, initdb and the server run as
// the `postgres` OS user. `stop()` stops the server and removes the folder.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const DEBIAN_BIN = '/usr/lib/postgresql/15/bin';

function osUser() {
  if (process.getuid?.() !== 0) return {};
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

function run(cmd, args, ids) {
  return new Promise((resolve) => {
    // a private process group: a Ctrl-C meant for the benchmark must not reach the server
    // before the benchmark stops it
    const child = spawn(cmd, args, {
      ...ids,
      detached: true,
      env: { ...process.env, LC_MESSAGES: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (e) => resolve({ code: 127, out: String(e) }));
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts the scratch cluster; resolves with its URL (database `postgres`), its folder and `stop()`. */
export async function startDebianCluster() {
  const initdb = path.join(DEBIAN_BIN, 'initdb');
  const pgCtl = path.join(DEBIAN_BIN, 'pg_ctl');
  if (!fs.existsSync(initdb)) throw new Error(`--server debian needs the postgresql-15 package (${initdb} not found)`);
  const ids = osUser();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-bench-pg15-'));
  const data = path.join(dir, 'data');
  const sockets = path.join(dir, 'run');
  const log = path.join(dir, 'postgres.log');
  const pwfile = path.join(dir, 'pwfile');
  const password = randomBytes(18).toString('base64url');
  fs.mkdirSync(sockets);
  fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (ids.uid !== undefined) for (const p of [dir, sockets, pwfile]) fs.chownSync(p, ids.uid, ids.gid);
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  // UTF8 in the machine's C.UTF-8 locale, as Debian's pg_createcluster sets it up here; the
  // password is only for pg_hba.conf (scram on 127.0.0.1); postgresql.conf is initdb's
  const init = await run(
    initdb,
    ['-D', data, '-U', 'postgres', '--encoding=UTF8', '--locale=C.UTF-8', '--auth=scram-sha-256', `--pwfile=${pwfile}`],
    ids,
  );
  if (init.code !== 0) {
    remove();
    throw new Error(`initdb failed: ${init.out.trim().split('\n').pop()}`);
  }
  const port = await freePort();
  const start = await run(
    pgCtl,
    ['start', '-w', '-t', '60', '-D', data, '-l', log, '-o', `-p ${port} -k ${sockets}`],
    ids,
  );
  if (start.code !== 0) {
    const tail = fs.existsSync(log)
      ? fs.readFileSync(log, 'utf8').trim().split('\n').pop()
      : start.out.trim().split('\n').pop();
    remove();
    throw new Error(`the Debian PostgreSQL 15 cluster did not start: ${tail}`);
  }
  let stopped = false;
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    dir,
    port,
    async stop() {
      if (stopped) return;
      stopped = true;
      await run(pgCtl, ['stop', '-w', '-t', '60', '-m', 'fast', '-D', data], ids);
      remove();
    },
  };
}
