// Decisions a batch at a time (canon.begin_decisions, canon.finish_decisions): a whole batch
// commits once, an authority that throws fails only its own run, and the worker runs on a
// pool whose application left int8 as strings (pg's default), as a library user's may.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/engine/log.js';
import { Worker } from '../src/engine/worker.js';
import { definePipeline } from '../src/pipeline/define.js';
import { syncPipeline } from '../src/pipeline/sync.js';
import { verifyStatus } from '../src/proof/status.js';
import { createTestDb, type TestDb } from './helpers.js';

const pipeline = definePipeline({
  name: 'batch-test',
  jobTypes: { step: { maxAttempts: 2, timeoutSeconds: 30 } },
  authority(entity) {
    if (entity.id.startsWith('bad-')) throw new Error(`no rule for ${entity.id}`);
    const done = entity.events.some((e) => e.kind === 'step.succeeded');
    return done ? { done: true } : { required: [{ type: 'step' }] };
  },
  handlers: { step: async () => ({ ok: true }) },
});

describe('decisions in batches', () => {
  let db: TestDb;
  let pool: pg.Pool;
  beforeAll(async () => {
    db = await createTestDb('decbatch');
    // int8 as text, pg's own default (the test helpers parse it as numbers for everyone else)
    pool = new pg.Pool({
      connectionString: db.url,
      max: 8,
      types: {
        getTypeParser: (oid: number, format?: 'text' | 'binary') =>
          oid === 20 ? (v: string) => v : pg.types.getTypeParser(oid, format),
      } as pg.CustomTypesConfig,
    });
  });
  afterAll(async () => {
    await pool.end();
    await db.end();
  });

  it('decides a batch in one transaction; a throwing authority fails only its own run', async () => {
    await syncPipeline(pool, pipeline);
    const good = Array.from({ length: 30 }, (_, i) => `good-${i}`);
    const bad = ['bad-1', 'bad-2'];
    await pool.query(`select canon.append_event(e, 'doc.created') from unnest($1::text[]) e`, [[...good, ...bad]]);
    const w = new Worker({
      pool,
      url: db.url,
      pipeline,
      lanes: ['decision', 'execution'],
      role: 'work',
      concurrency: 4,
      decisionBatch: 100,
      log: createLogger({ level: 'silent' }),
      once: true,
      listen: false,
      pollMs: 50,
    });
    const stats = await w.run();
    const q = async (sql: string, p: unknown[] = []) => (await db.pool.query(sql, p)).rows;
    // every good entity: one decision required step, step ran, a second decision said done
    const done = await q(
      `select count(*)::int as n from canon.entity_status where entity_id like 'good-%' and status = 'completed'`,
    );
    expect(done[0].n).toBe(good.length);
    const required = await q(
      `select entity_id, count(*)::int as n from canon.events where kind = 'job.step.required' group by entity_id`,
    );
    expect(required.length).toBe(good.length);
    expect(required.every((r) => r.n === 1)).toBe(true);
    // the first decisions of the 32 entities were made together: one transaction wrote them all
    const firstRuns = await q(
      `select count(distinct r.finished_at)::int as commits from canon.job_runs r
        where r.lane = 'decision' and r.attempt = 1 and r.status = 'succeeded'
          and r.job_id in (select min(id) from canon.jobs where lane = 'decision' group by entity_id)`,
    );
    expect(firstRuns[0].commits).toBeLessThan(good.length);
    // the bad entities' decision runs failed with the authority's error, and are dead after their attempts
    const badRuns = await q(
      `select entity_id, status, reason, error from canon.job_runs where entity_id like 'bad-%' order by id`,
    );
    expect(badRuns.length).toBeGreaterThanOrEqual(2);
    expect(
      badRuns.every(
        (r) =>
          r.status === 'failed' && r.reason === 'handler_error' && /authority threw: no rule for bad-/.test(r.error),
      ),
    ).toBe(true);
    expect(
      await q(`select count(*)::int as n from canon.events where entity_id like 'bad-%' and kind like 'job.%'`),
    ).toEqual([{ n: 0 }]);
    expect(stats.errors).toBe(0);
    expect((await verifyStatus(db.pool)).ok).toBe(true);
  });

  it('a decision whose writes fail in the database is retried alone; the rest of its batch commits', async () => {
    // `ghost` is declared by the pipeline but not whitelisted in this database: the gateway
    // refuses its job (CN004) and the batch's transaction rolls back
    const ghostly = definePipeline({
      name: 'batch-ghost',
      jobTypes: { step: { maxAttempts: 2, timeoutSeconds: 30 }, ghost: { maxAttempts: 1, timeoutSeconds: 30 } },
      authority(entity) {
        const done = entity.events.some((e) => e.kind.endsWith('.succeeded'));
        return done ? { done: true } : { required: [{ type: entity.id.startsWith('ghost-') ? 'ghost' : 'step' }] };
      },
      handlers: { step: async () => null, ghost: async () => null },
    });
    const plain = ['plain-1', 'plain-2', 'plain-3'];
    await pool.query(`select canon.append_event(e, 'doc.created') from unnest($1::text[]) e`, [[...plain, 'ghost-1']]);
    const w = new Worker({
      pool,
      url: db.url,
      pipeline: ghostly,
      lanes: ['decision', 'execution'],
      role: 'work',
      concurrency: 4,
      decisionBatch: 100,
      log: createLogger({ level: 'silent' }),
      once: true,
      listen: false,
      pollMs: 50,
    });
    await w.run();
    const q = async (sql: string, p: unknown[] = []) => (await db.pool.query(sql, p)).rows;
    expect(
      await q(`select count(*)::int as n from canon.entity_status where entity_id = any($1) and status = 'completed'`, [
        plain,
      ]),
    ).toEqual([{ n: plain.length }]);
    const ghost = await q(
      `select status, reason, error from canon.job_runs where entity_id = 'ghost-1' and lane = 'decision'`,
    );
    expect(ghost.length).toBeGreaterThanOrEqual(1);
    expect(
      ghost.every((r) => r.status === 'failed' && /job type "ghost" is not in the job_types whitelist/.test(r.error)),
    ).toBe(true);
    // nothing of the refused decision was written: no required event without its job
    expect(
      await q(`select count(*)::int as n from canon.events where entity_id = 'ghost-1' and kind like 'job.%'`),
    ).toEqual([{ n: 0 }]);
    expect((await verifyStatus(db.pool)).ok).toBe(true);
  });
});
