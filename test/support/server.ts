// A Postgres of the test's own: fault tests stop it hard, restart it and kill its backends,
// which must never happen to the shared server under .canon-test/ that other files use.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../../src/db/cluster.js';
import {
  crashEmbedded,
  type EmbeddedConfig,
  type EmbeddedPaths,
  embeddedPaths,
  embeddedUrl,
  startEmbedded,
  stopEmbedded,
} from '../../src/db/embedded.js';
import { migrate } from '../../src/migrate.js';

pg.types.setTypeParser(20, (v) => Number(v));

export { freePort };

export interface OwnServer {
  cfg: EmbeddedConfig;
  paths: EmbeddedPaths;
  url(db?: string): string;
  /** Creates and migrates a database; returns its URL. */
  createDb(name: string): Promise<string>;
  crash(): Promise<void>;
  restart(): Promise<void>;
  /** A clean shutdown (every WAL record flushed) and a start. */
  cleanRestart(): Promise<void>;
  stop(): Promise<void>;
}

export async function ownServer(label: string): Promise<OwnServer> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), `canon-${label}-`));
  fs.chmodSync(home, 0o755); // the server runs as the postgres OS user when tests run as root
  const paths = embeddedPaths(home);
  const cfg = await startEmbedded({ port: await freePort() }, paths);
  const url = (db = 'postgres') => embeddedUrl(cfg, db);
  return {
    cfg,
    paths,
    url,
    async createDb(name) {
      const admin = new pg.Client({ connectionString: url() });
      await admin.connect();
      await admin.query(`create database ${name}`);
      await admin.end();
      const c = new pg.Client({ connectionString: url(name) });
      await c.connect();
      await migrate(c);
      await c.end();
      return url(name);
    },
    crash: () => crashEmbedded(paths),
    restart: async () => {
      await startEmbedded({}, paths);
    },
    async cleanRestart() {
      await stopEmbedded(paths);
      await startEmbedded({}, paths);
    },
    async stop() {
      await stopEmbedded(paths).catch(() => {});
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}
