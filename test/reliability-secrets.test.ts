// No password or token in any output: every command of `canon --help` (found recursively) runs
// with a canary password in DATABASE_URL — once against a server where a user with that
// password logs in (with and without --json), once against a port where nothing listens (with
// --debug, where stack traces are allowed and must be redacted too), and `canon work --log json --log-level debug`; then
// `canon serve` with a canary bearer token answers every endpoint. stdout, stderr, HTTP bodies
// and headers are searched for the password (raw and URL-encoded) and the token.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvent } from '../src/ledger.js';
import { canon, createTestDb, spawnCanon, type TestDb } from './helpers.js';
import { runBatch } from './support/batch.js';
import { argsFor, listCommands } from './support/commands.js';
import { hasStackTrace, report } from './support/report.js';
import { freePort } from './support/server.js';

const tag = randomBytes(4).toString('hex');
// URL-special characters on purpose: redaction must catch the password decoded and encoded
const PASSWORD = `Canary-${tag}-P@ss:w0rd/x?`;
const TOKEN = `canarytoken${tag}${randomBytes(8).toString('hex')}`;
const SECRETS = [PASSWORD, encodeURIComponent(PASSWORD), TOKEN, `Canary-${tag}`];
const user = `t_canary_${tag}`;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-secrets-'));
const env = { CANON_SERVE_TOKEN: TOKEN, CANON_TSA_KEY_DIR: scratch, CANON_HOME: path.join(scratch, 'home') };
let n = 0;
const file = () => path.join(scratch, `out-${n++}.json`);

let db: TestDb;
let reachable: string;
let unreachable: string;

beforeAll(async () => {
  db = await createTestDb('secrets');
  await db.pool.query(`create user ${user} login superuser password '${PASSWORD.replace(/'/g, "''")}'`);
  const u = new URL(db.url);
  u.username = user;
  u.password = encodeURIComponent(PASSWORD);
  reachable = u.toString();
  u.port = String(await freePort());
  unreachable = u.toString();
  await appendEvent(db.pool, { entityId: 'sec-doc', kind: 'document.created', payload: { content: 'secret test' } });
});

afterAll(async () => {
  await db.pool
    .query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = $1`, [user])
    .catch(() => {});
  await db.pool.query(`drop user if exists ${user}`).catch(() => {});
  await db.end();
});

const leaks = (text: string) => SECRETS.filter((s) => text.includes(s));

async function pool<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

describe('secrets', () => {
  it('no command prints the password of DATABASE_URL, reachable or not, with or without --json, or with --debug', async () => {
    const specs = await listCommands();
    expect(specs.length).toBeGreaterThan(40);
    const runs: { label: string; args: string[]; url: string; debug: boolean }[] = [];
    const seen = new Set<string>();
    for (const s of specs) {
      if (s.path[0] === 'serve') continue; // long-running: its own test below
      const args = argsFor(s, { entity: 'sec-doc', file });
      runs.push({
        label: `reachable --json ${args.join(' ')}`,
        args: [...args, '--json'],
        url: reachable,
        debug: false,
      });
      runs.push({ label: `reachable ${args.join(' ')}`, args, url: reachable, debug: false });
      // every connection failure goes through the same one-line path (friendlyDbError): one
      // subcommand per command by default, all of them in a soak
      if (process.env.CANON_SOAK || !seen.has(s.path[0])) {
        seen.add(s.path[0]);
        runs.push({
          label: `unreachable --debug ${args.join(' ')}`,
          args: [...args, '--debug'],
          url: unreachable,
          debug: true,
        });
      }
    }
    for (const url of [reachable, unreachable]) {
      runs.push({
        label: `work --log json (${url === reachable ? 'reachable' : 'unreachable'})`,
        args: ['work', '--once', '--log', 'json', '--log-level', 'debug'],
        url,
        debug: false,
      });
    }
    // Through the binary's main() in one process (cli-batch), and a sample as real processes
    // (the JSON logs and every tenth of the rest).
    const real = runs.map((r, i) => r.args.includes('--log') || i % 10 === 0);
    const batch = await runBatch(
      runs
        .filter((_, i) => !real[i])
        .map((r) => ({ args: r.args, env: { ...env, DATABASE_URL: r.url }, timeoutMs: 45_000 })),
    );
    const procs = await pool(
      runs.filter((_, i) => real[i]),
      4,
      (r) => canon(r.args, { url: r.url, env, timeout: 45_000 }),
    );
    if (process.env.CANON_DEBUG_TIMING)
      console.log(
        batch
          .map((b, i) => [b.ms, runs.filter((_, j) => !real[j])[i].label] as const)
          .sort((a, b) => b[0] - a[0])
          .slice(0, 12)
          .map((x) => x.join(' ms '))
          .join('\n'),
      );
    let bi = 0;
    let pi = 0;
    const results = runs.map((r, i) => ({ ...r, res: real[i] ? procs[pi++] : batch[bi++] }));
    const leaked = results.filter((r) => leaks(r.res.stdout + r.res.stderr).length > 0);
    const traced = results.filter((r) => !r.debug && hasStackTrace(r.res.stdout + r.res.stderr));
    report('secrets: every command', {
      runs: results.length,
      as_processes: procs.length,
      commands: specs.length,
      leaked_secrets: leaked.length,
      stack_traces: traced.length,
    });
    expect(
      leaked.map(
        (r) =>
          `${r.label}: ${leaks(r.res.stdout + r.res.stderr).join(', ')} in ${(r.res.stdout + r.res.stderr).slice(0, 300)}`,
      ),
    ).toEqual([]);
    expect(traced.map((r) => `${r.label}: ${r.res.stderr.slice(0, 500)}`)).toEqual([]);
    // the unreachable runs did fail on the connection (they were not all usage errors)
    expect(results.filter((r) => r.url === unreachable && r.res.exitCode === 3).length).toBeGreaterThanOrEqual(10);
  }, 600_000);

  it('canon serve: no password or token in any HTTP response, header or log line, with the database up or down', async () => {
    let requests = 0;
    const found: string[] = [];
    for (const url of [reachable, unreachable]) {
      const s = spawnCanon(['serve', '--port', '0', '--json'], { url, env });
      const port = await new Promise<number>((resolve, reject) => {
        let buf = '';
        s.stdout!.on('data', (d) => {
          buf += d;
          const m = /"port":\s*(\d+)/.exec(buf);
          if (m) resolve(Number(m[1]));
        });
        s.once('exit', () => reject(new Error(`serve exited: ${buf}`)));
      });
      const get = (p: string, headers: Record<string, string> = {}, method = 'GET') =>
        new Promise<string>((resolve) => {
          const req = http.request({ host: '127.0.0.1', port, path: p, method, headers }, (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve(`${res.statusCode} ${JSON.stringify(res.headers)} ${body}`));
          });
          req.on('error', (e) => resolve(`error ${e.message}`));
          req.end();
        });
      const auth = { authorization: `Bearer ${TOKEN}` };
      for (const [p, h, m] of [
        ['/health', {}, 'GET'],
        ['/health/detailed', {}, 'GET'],
        ['/health/detailed', { authorization: `Bearer ${TOKEN}x` }, 'GET'],
        ['/health/detailed', auth, 'GET'],
        ['/dead-jobs', auth, 'GET'],
        ['/dead-jobs?limit=abc', auth, 'GET'],
        ['/dead-jobs?nope=1', auth, 'GET'],
        ['/metrics', {}, 'GET'],
        ['/nope', auth, 'GET'],
        ['/health', auth, 'POST'],
      ] as [string, Record<string, string>, string][]) {
        requests++;
        const text = await get(p, h, m);
        if (leaks(text).length) found.push(`${url === reachable ? 'up' : 'down'} ${m} ${p}: ${text.slice(0, 300)}`);
      }
      s.kill('SIGTERM');
      const r = await s;
      const logs = String(r.stdout) + String(r.stderr);
      if (leaks(logs).length) found.push(`serve output: ${logs.slice(0, 300)}`);
      expect(hasStackTrace(logs), logs).toBe(false);
    }
    report('secrets: canon serve', { runs: requests, leaked_secrets: found.length, stack_traces: 0 });
    expect(found).toEqual([]);
  }, 120_000);
});
