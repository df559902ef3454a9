// Starts one real Postgres for the whole run (TEST_DATABASE_URL, or an embedded server under
// .canon-test/), migrates a template database once, and hands its address to the test files,
// each of which clones the template into a database of its own.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { embeddedPaths, embeddedUrl, startEmbedded } from '../src/db/embedded.js';
import { migrate } from '../src/migrate.js';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    templateDb: string;
    canonHome: string;
  }
}

export default async function setup(project: TestProject) {
  const home = path.resolve('.canon-test');
  // The test files' scratch folders (keys, backups, homes, inputs) go under one folder of this
  // run, removed at the end: os.tmpdir() follows TMPDIR, which the workers and the canon
  // processes they start inherit.
  // Like /tmp itself it is open to every user (sticky): as root, embedded Postgres runs initdb
  // as the postgres user, which must read the password file written there.
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-test-run-'));
  fs.chmodSync(scratch, 0o1777);
  process.env.TMPDIR = scratch;
  let adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) {
    const cfg = await startEmbedded({ port: 54339 }, embeddedPaths(home));
    adminUrl = embeddedUrl(cfg, 'postgres');
  }
  // one template per run, so several runs (developers, CI) can share a server
  const template = `canon_template_${process.pid}_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  // Leftovers of earlier runs (kept for inspection until now): drop those older than an hour
  // that nobody is connected to; a concurrent run's databases are left alone.
  const old = await admin.query(
    `select d.datname from pg_database d
      where (d.datname like 'canon_t_%' or d.datname like 'canon_template_%')
        and not exists (select 1 from pg_stat_activity a where a.datname = d.datname)
        and coalesce((pg_stat_file('base/' || d.oid || '/PG_VERSION', true)).modification, now()) < now() - interval '1 hour'`,
  );
  for (const r of old.rows) await admin.query(`drop database if exists "${r.datname}"`).catch(() => {});
  await admin.query(`create database ${template}`);
  const u = new URL(adminUrl);
  u.pathname = `/${template}`;
  const t = new pg.Client({ connectionString: u.toString() });
  await t.connect();
  await migrate(t);
  await t.end();
  await admin.end();
  project.provide('adminUrl', adminUrl);
  project.provide('templateDb', template);
  project.provide('canonHome', home);
  return () => fs.rmSync(scratch, { recursive: true, force: true });
}
