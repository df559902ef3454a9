// What the seeing-*.test.ts files share: the fast example pipeline (short TTLs and backoff,
// content-driven failures: #poison, #permanent, #hang), its TSA key directory, and small
// factories for documents and JSON runs of the binary.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appendEvent } from '../src/ledger.js';
import { canon, root, type TestDb } from './helpers.js';

export const FAST = path.join(root, 'test/fixtures/fast-pipeline.mjs');
const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-seeing-'));
export const env = (extra: Record<string, string> = {}) => ({ CANON_TSA_KEY_DIR: keyDir, ...extra });

/** Runs the binary with --json and parses stdout (undefined when it printed nothing). */
export async function json(db: TestDb, args: string[]) {
  const r = await canon([...args, '--json'], { url: db.url, env: env() });
  return { ...r, data: r.stdout ? JSON.parse(r.stdout) : undefined };
}

/** An example-pipeline document; its content selects a failure mode (see the fixture). */
export const doc = (db: TestDb, id: string, content = `document ${id}`) =>
  appendEvent(db.pool, { entityId: id, kind: 'document.created', payload: { content } });

/** The example pipeline once over what is ready, with the fast settings. */
export async function workOnce(db: TestDb, extra: Record<string, string> = {}, args: string[] = []) {
  return canon(['work', '--once', '--pipeline', FAST, ...args], { url: db.url, env: env(extra) });
}
