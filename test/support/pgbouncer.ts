// Debian's PgBouncer (installed by `.ci/run`) in transaction pooling mode in front of a
// Postgres of the test's own: a scratch folder, a free port on 127.0.0.1, no Unix socket,
// run as the postgres OS user when the tests run as root (PgBouncer refuses root too).
// Clients log in without a password (auth_type trust); PgBouncer logs in to Postgres with
// the server's own credentials from its [databases] line.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, postgresOsUser } from '../../src/db/cluster.js';

export const PGBOUNCER = '/usr/sbin/pgbouncer';

export interface Bouncer {
  port: number;
  /** the URL of `database` through PgBouncer */
  url: string;
  log(): string;
  stop(): Promise<void>;
}

export async function startPgBouncer(server: string, opts: { poolSize?: number } = {}): Promise<Bouncer> {
  if (!fs.existsSync(PGBOUNCER))
    throw new Error(`${PGBOUNCER} is not installed: .ci/run installs Debian's pgbouncer (apt-get install pgbouncer)`);
  const target = new URL(server);
  const database = target.pathname.slice(1);
  const user = decodeURIComponent(target.username);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-pgbouncer-'));
  fs.chmodSync(dir, 0o755);
  const port = await freePort();
  const ini = path.join(dir, 'pgbouncer.ini');
  const logFile = path.join(dir, 'pgbouncer.log');
  fs.writeFileSync(
    path.join(dir, 'users.txt'),
    `"${user}" "${decodeURIComponent(target.password).replace(/"/g, '""')}"\n`,
  );
  fs.writeFileSync(
    ini,
    [
      '[databases]',
      `${database} = host=${target.hostname} port=${target.port} dbname=${database} user=${user} password=${decodeURIComponent(target.password)}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${path.join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${opts.poolSize ?? 20}`,
      'max_client_conn = 500',
      `logfile = ${logFile}`,
      `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  const as = postgresOsUser();
  if (as) for (const f of fs.readdirSync(dir)) fs.chownSync(path.join(dir, f), as.uid, as.gid);
  if (as) fs.chownSync(dir, as.uid, as.gid);
  const child: ChildProcess = spawn(PGBOUNCER, [ini], { ...as, stdio: 'ignore' });
  const log = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
  // listening once its log says so (or give up with the log)
  for (let i = 0; !/listening on 127\.0\.0\.1/.test(log()); i++) {
    if (child.exitCode !== null || i > 100) throw new Error(`pgbouncer did not start:\n${log().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    url: `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${database}`,
    log,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
