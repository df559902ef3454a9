// A fault scenario with real processes: example documents appended on a Postgres of the
// test's own, `canon work` processes (the example pipeline with short TTLs) started against a
// URL that may lead through a proxy or a pooler, `canon tick` rescuing as cron would, and the
// guarantees checked afterwards: every document anchored exactly once, no job or event
// half-written, the audit clean, no worker dead or showing a stack trace.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ResultPromise } from 'execa';
import type pg from 'pg';
import { expect } from 'vitest';
import { appendEvent } from '../../src/ledger.js';
import { canon, root, spawnCanon, waitFor } from '../helpers.js';
import { checkInvariants, outcomes } from './invariants.js';
import { hasStackTrace, report } from './report.js';

export const FAST = path.join(root, 'test/fixtures/fast-pipeline.mjs');

export interface FaultRig {
  pool: pg.Pool;
  /** a direct URL of the database (tick, audit and the checks use it) */
  url: string;
  env: Record<string, string>;
}

/** The environment of the example pipeline with short TTLs (FAST_TTL) and many attempts. */
export function fastEnv(label: string): Record<string, string> {
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), `canon-tsa-${label}-`));
  return { CANON_TSA_KEY_DIR: keyDir, FAST_TTL: '2', FAST_ATTEMPTS: '20' };
}

/** Decisions rescued quickly too, and retried without a long backoff. */
export async function quickDecisions(pool: pg.Pool): Promise<void> {
  await pool.query(
    `update canon.job_types set timeout_seconds = 2, backoff_base_seconds = 0.1, backoff_max_seconds = 0.5, max_attempts = 20 where name = 'decide'`,
  );
}

/** Appends documents `${prefix}-${from}` .. `${prefix}-${from + n - 1}`. */
export async function docs(rig: FaultRig, prefix: string, n: number, from = 0): Promise<void> {
  for (let i = from; i < from + n; i++)
    await appendEvent(rig.pool, {
      entityId: `${prefix}-${i}`,
      kind: 'document.created',
      payload: { content: `${prefix} document ${i}` },
    });
}

export async function anchored(rig: FaultRig, prefix: string): Promise<number> {
  return (
    await rig.pool.query(
      `select count(*)::int as n from canon.events where kind = 'anchor.succeeded' and entity_id like $1 || '-%'`,
      [prefix],
    )
  ).rows[0].n as number;
}

export function startWorkers(
  rig: FaultRig,
  n: number,
  workerUrl: string,
  o: { env?: Record<string, string>; args?: string[] } = {},
): ResultPromise[] {
  return Array.from({ length: n }, () =>
    spawnCanon(
      [
        'work',
        '--pipeline',
        FAST,
        '--concurrency',
        '4',
        '--log',
        'json',
        '--log-level',
        'warn',
        '--poll-interval',
        '200',
        ...(o.args ?? []),
      ],
      { url: workerUrl, env: { ...rig.env, ...o.env } },
    ),
  );
}

/** `canon tick` as cron runs it (rescue only) until every document is anchored. */
export async function settle(rig: FaultRig, prefix: string, n: number, timeout = 120_000): Promise<void> {
  await waitFor(
    async () => {
      await canon(['tick', '--max-jobs', '0', '--pipeline', FAST], { url: rig.url, env: rig.env });
      return (await anchored(rig, prefix)) === n;
    },
    { timeout, interval: 500, what: `all ${prefix} documents anchored` },
  ).catch(async (e) => {
    const state = (
      await rig.pool.query(
        `select lane, type, status, count(*)::int as n from canon.jobs where entity_id like $1 || '-%' group by 1, 2, 3 order by 1, 2, 3`,
        [prefix],
      )
    ).rows;
    throw new Error(`${(e as Error).message}: ${await anchored(rig, prefix)}/${n}; jobs ${JSON.stringify(state)}`);
  });
}

/** Stops the workers with SIGTERM and returns what they wrote; none may have died on its own. */
export async function stopWorkers(ws: ResultPromise[]) {
  const early = ws.filter((w) => w.exitCode !== null && w.exitCode !== undefined);
  for (const w of ws) w.kill('SIGTERM');
  const rs = await Promise.all(ws);
  const stderr = rs.map((r) => String(r.stderr)).join('\n');
  return {
    died: early.length,
    exitCodes: rs.map((r) => r.exitCode),
    stackTraces: rs.filter((r) => hasStackTrace(String(r.stderr) + String(r.stdout))).length,
    reconnects: (stderr.match(/database unavailable, retrying|database call failed, retrying/g) ?? []).length,
    stderr,
  };
}

/** Stops the workers, prints the scenario's counts and asserts the guarantees. */
export async function stopAndCheck(
  rig: FaultRig,
  scenario: string,
  prefix: string,
  n: number,
  ws: ResultPromise[],
  counts: Record<string, number>,
) {
  const w = await stopWorkers(ws);
  const inv = await checkInvariants(rig.pool);
  const out = await outcomes(rig.pool, `${prefix}-`);
  const audit = await canon(['audit', 'verify', '--json'], { url: rig.url });
  report(scenario, {
    runs: n,
    ...counts,
    lost: n - out.done,
    doubled: out.doubled,
    partial: Object.keys(inv.violations).length,
    stack_traces: w.stackTraces,
    reconnect_warnings: w.reconnects,
    workers_died: w.died,
  });
  expect(w.died).toBe(0);
  expect(w.stackTraces, w.stderr.slice(0, 2000)).toBe(0);
  expect(inv.violations).toEqual({});
  expect(out).toMatchObject({ done: n, failed: 0, open: [], doubled: 0 });
  expect(audit.exitCode, audit.stdout + audit.stderr).toBe(0);
  return w;
}

/** The JSON log lines of a worker's stderr whose message matches `msg`. */
export function logLines(stderr: string, msg: RegExp): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => msg.test(String(l.msg)));
}
