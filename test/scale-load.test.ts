// `canon load` at small scale on a real Postgres: the Node hash chain is the SQL one, the
// dataset has the realistic mix and the same shape canon's own code paths leave (gap zero,
// one result event per successful run, status rows equal to a recomputation, proofs that
// verify), progress goes to stderr, and a non-empty target is refused or resumed.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inclusionProof, treeHash } from '../pipelines/example/merkle.js';
import { merkleBatch } from '../pipelines/example/synthetic.js';
import { verifyChains } from '../src/audit.js';
import { appendEvent } from '../src/ledger.js';
import { type Json, jsonbText } from '../src/load/jsonb.js';
import { load } from '../src/load/load.js';
import { verifyStatus } from '../src/proof/status.js';
import { canon, createTestDb, oneLineError, type TestDb } from './helpers.js';

// 60 entities, 10 jobs and 50 events each: small, and every rare outcome still appears once
const SMALL = ['--entities', '60', '--jobs', '600', '--runs', '640', '--events', '3000'];

let db: TestDb;
let out: { counts: Record<string, number>; mix: Record<string, number> };
let stderr: string;
beforeAll(async () => {
  db = await createTestDb('scaleload');
  const r = await canon(['load', ...SMALL, '--json'], { url: db.url });
  expect(r.exitCode, r.stderr).toBe(0);
  out = JSON.parse(r.stdout);
  stderr = r.stderr;
}, 120_000);
afterAll(async () => db.end());

const one = async <T = Record<string, unknown>>(sql: string, params: unknown[] = []) =>
  (await db.pool.query(sql, params)).rows[0] as T;

describe('canon load', () => {
  it('writes exactly the counts asked for, with a progress line on stderr and nothing but JSON on stdout', async () => {
    expect(out.counts).toEqual({ entities: 60, events: 3000, jobs: 600, runs: 640 });
    expect(stderr).toMatch(/loading .*3,000\/3,000 events 100%/);
    expect(stderr).toMatch(/\d+(\.\d)?\/s\s+ETA/);
  });

  it('leaves hash chains and entity heads that canon audit verify and canon status verify accept', async () => {
    const audit = await verifyChains(db.pool);
    expect(audit.breaks).toEqual([]);
    expect(audit.events).toBe(3000);
    const status = await verifyStatus(db.pool);
    expect(status.differences).toEqual([]);
    const r = await canon(['audit', 'verify'], { url: db.url });
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  });

  it('has the realistic mix: successes, retries, dead jobs with every reason code, stuck runs, a ready backlog, 30 days of history', async () => {
    const reasons = (
      await db.pool.query(`select last_reason, count(*)::int as n from canon.jobs where status = 'failed' group by 1`)
    ).rows
      .map((r) => r.last_reason)
      .sort();
    expect(reasons).toEqual(['handler_error', 'max_attempts_exceeded', 'precondition_failed', 'ttl_exceeded']);
    const s = await one<Record<string, number>>(`
      select (select count(*) from canon.jobs j join canon.job_types t on t.name = j.type
               where j.status = 'running' and j.heartbeat_at < now() - make_interval(secs => t.timeout_seconds))::int as stuck,
             (select count(*) from canon.jobs where status = 'queued' and run_at <= now())::int as ready,
             (select count(*) from canon.jobs where status = 'queued' and run_at > now() - interval '1 minute' and attempts > 0)::int as retrying,
             (select count(*) from canon.job_runs r where r.status = 'failed' and r.reason = 'handler_error'
                 and exists (select 1 from canon.job_runs s where s.job_id = r.job_id and s.status = 'succeeded'))::int as retried_then_ok,
             (select count(*) from canon.events where kind = 'anchor.succeeded')::int as anchored,
             extract(day from now() - (select min(created_at) from canon.events))::int as days`);
    expect(s.stuck).toBeGreaterThanOrEqual(1);
    expect(s.ready).toBeGreaterThanOrEqual(2);
    expect(s.retrying).toBeGreaterThanOrEqual(1);
    expect(s.retried_then_ok).toBeGreaterThan(0);
    expect(s.anchored).toBeGreaterThan(40);
    expect(s.days).toBeGreaterThanOrEqual(25);
    expect(out.mix.completed).toBe(s.anchored);
  });

  it('has the shape canon writes: every required event has its job, every successful run exactly one result event, every dead execution job one .failed event', async () => {
    const s = await one<Record<string, number>>(`
      select (select count(*) from canon.events e where e.kind like 'job.%.required'
                 and not exists (select 1 from canon.jobs j where j.source_event_position = e.position))::int as gap,
             (select count(*) from canon.job_runs r where r.lane = 'execution' and r.status = 'succeeded'
                 and (select count(*) from canon.events e where e.trace_id = r.trace_id and e.kind like '%.succeeded') <> 1)::int as results_not_one,
             (select count(*) from canon.jobs j where j.lane = 'execution' and j.status = 'failed'
                 and (select count(*) from canon.events e where e.kind = j.type || '.failed' and (e.payload->>'job_id')::bigint = j.id) <> 1)::int as failed_not_one,
             (select count(*) from canon.jobs where lane = 'decision' and status = 'queued')::int as queued_decisions,
             (select count(distinct entity_id) from canon.jobs where lane = 'decision' and status = 'queued')::int as entities_with_queued_decision,
             (select count(*) from canon.jobs where not via_gateway)::int as bypass,
             (select count(*) from canon.events where created_at > now())::int as future`);
    expect(s).toEqual({
      gap: 0,
      results_not_one: 0,
      failed_not_one: 0,
      queued_decisions: s.entities_with_queued_decision,
      entities_with_queued_decision: s.entities_with_queued_decision,
      bypass: 0,
      future: 0,
    });
  });

  it('writes real proofs: the TSA tokens and Merkle proofs of loaded documents verify in a provenance report', async () => {
    const ids = (
      await db.pool.query(
        `select entity_id from canon.events where kind = 'anchor.succeeded' order by entity_id limit 3`,
      )
    ).rows.map((r) => r.entity_id);
    const file = path.join(os.tmpdir(), `canon-scale-prov-${randomBytes(4).toString('hex')}.json`);
    const w = await canon(['report:provenance', ...ids, '-o', file], { url: db.url });
    expect(w.exitCode, w.stderr).toBe(0);
    const d = await canon(['report:debug-provenance', file, '--json'], { url: db.url });
    expect(d.exitCode, d.stdout).toBe(0);
    expect(JSON.parse(d.stdout).failed).toBe(0);
    fs.rmSync(file, { force: true });
  });

  it('refuses to load twice, in one line, changing nothing', async () => {
    const before = await one(`select count(*)::int as n from canon.events`);
    const r = await canon(['load', ...SMALL], { url: db.url });
    expect(r.exitCode).toBe(2);
    expect(oneLineError(r)).toMatch(/already holds a complete canon load/);
    expect(await one(`select count(*)::int as n from canon.events`)).toEqual(before);
  });

  it('refuses a database with data of its own, and bad counts, in one line', async () => {
    const other = await createTestDb('scaleother');
    try {
      await appendEvent(other.pool, { entityId: 'mine-1', kind: 'document.created', payload: { content: 'x' } });
      const r = await canon(['load', ...SMALL], { url: other.url });
      expect(r.exitCode).toBe(2);
      expect(oneLineError(r)).toMatch(/not empty .*load into an empty database/);
      expect(await other.pool.query('select count(*)::int as n from canon.events')).toMatchObject({ rows: [{ n: 1 }] });
      const bad = await canon(['load', '--entities', '100', '--jobs', '100'], { url: other.url });
      expect(bad.exitCode).toBe(2);
      expect(oneLineError(bad)).toMatch(/--jobs must be at least 700/);
    } finally {
      await other.end();
    }
  });

  it('resumes an interrupted load with --resume and ends with the same counts and valid chains', async () => {
    const t = await createTestDb('scaleresume');
    try {
      const o = {
        entities: 60,
        jobs: 600,
        runs: 640,
        events: 3000,
        days: 30,
        seed: 'resume',
        prefix: 'doc',
        chunk: 20,
      };
      // the first chunk commits, then the process "dies"
      await expect(
        load(t.pool, t.url, o, {
          progress: {
            chunk: () => {
              throw new Error('killed');
            },
            phase: () => {},
          },
        }),
      ).rejects.toThrow(/--resume/);
      expect((await t.pool.query('select count(*)::int as n from canon.entities')).rows[0].n).toBe(20);
      const plain = await canon(
        [
          'load',
          '--entities',
          '60',
          '--jobs',
          '600',
          '--runs',
          '640',
          '--events',
          '3000',
          '--seed',
          'resume',
          '--chunk',
          '20',
        ],
        { url: t.url },
      );
      expect(plain.exitCode).toBe(2);
      expect(oneLineError(plain)).toMatch(/interrupted canon load .*chunk 1 of 3.*--resume/);
      const other = await canon(
        [
          'load',
          '--entities',
          '60',
          '--jobs',
          '600',
          '--runs',
          '640',
          '--events',
          '3000',
          '--seed',
          'other',
          '--chunk',
          '20',
          '--resume',
        ],
        { url: t.url },
      );
      expect(other.exitCode).toBe(2);
      expect(oneLineError(other)).toMatch(/started with other options/);
      const r = await canon(
        [
          'load',
          '--entities',
          '60',
          '--jobs',
          '600',
          '--runs',
          '640',
          '--events',
          '3000',
          '--seed',
          'resume',
          '--chunk',
          '20',
          '--resume',
          '--json',
        ],
        { url: t.url },
      );
      expect(r.exitCode, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout);
      expect(s.resumed_from_chunk).toBe(1);
      expect(s.counts).toEqual({ entities: 60, events: 3000, jobs: 600, runs: 640 });
      expect((await verifyChains(t.pool)).ok).toBe(true);
      expect((await verifyStatus(t.pool)).ok).toBe(true);
    } finally {
      await t.end();
    }
  });
});

describe('the loader hashes as Postgres does', () => {
  it("prints jsonb's canonical text for keys of every length and order, escapes and unicode", async () => {
    const values: Json[] = [
      { b: 1, a: 2, aa: [1, 'x'], '': null, é: 'ü', zz: { y: true, x: false } },
      {
        content: 'quote " backslash \\ tab \t newline \n bell \u0007 del \u007f emoji 😀',
        n: -12,
        big: 9007199254740991,
      },
      [{}, [], '', 0],
      { ключ: 1, key: 2, k: 3, 'a b': 4 },
    ];
    for (const v of values) {
      const pg = (await db.pool.query('select $1::jsonb::text as t', [JSON.stringify(v)])).rows[0].t;
      expect(jsonbText(v)).toBe(pg);
    }
  });

  it('builds the same Merkle root and audit paths as the anchor handler, for every batch size up to 70', () => {
    for (let n = 1; n <= 70; n++) {
      const leaves = Array.from({ length: n }, () => randomBytes(32));
      const t = merkleBatch(leaves);
      expect(t.root.equals(treeHash(leaves))).toBe(true);
      for (let i = 0; i < n; i++)
        expect(t.paths[i].map((p) => p.toString('hex'))).toEqual(
          inclusionProof(i, leaves).map((p) => p.toString('hex')),
        );
    }
  });
});
