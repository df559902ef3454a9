// `canon load` computes in TypeScript what Postgres computes for rows written one at a time:
// the event hash (with jsonb's canonical text of the payload), the run's trace id, the retry
// backoff and the timestamp text of a rescue's error. These properties check each twin in
// src/load/mirror.ts against its SQL on random inputs, so neither side can change alone.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvent } from '../src/ledger.js';
import { type Json, jsonbText } from '../src/load/jsonb.js';
import { backoffSeconds, eventHash, hashInput, isoMicros, pgTime, traceId } from '../src/load/mirror.js';
import { ENGINE_SQL } from '../src/sql/engine.js';
import { createTestDb, type TestDb } from './helpers.js';

let db: TestDb;
let c: pg.PoolClient;
beforeAll(async () => {
  db = await createTestDb('loadmirror');
  c = await db.pool.connect();
});
afterAll(async () => {
  c.release();
  await db.end();
});

// Postgres text holds no NUL; the rest of Unicode, controls and chr(31) included, is fair game
const text = (o: { minLength?: number; maxLength?: number } = {}) =>
  fc.string({ unit: 'grapheme', maxLength: 30, ...o }).filter((s) => !s.includes('\u0000'));
const json: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.maxSafeInteger(),
    text(),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(text({ maxLength: 12 }), tie('value'), { maxKeys: 5 }),
  ),
})).value;
// from 1970 to 2100, to the microsecond
const micros = fc
  .integer({ min: 0, max: 4_102_444_800_000 })
  .chain((ms) => fc.integer({ min: 0, max: 999 }).map((extra) => ms * 1000 + extra));
const RUNS = { numRuns: 150 };

describe('the loader computes what Postgres computes', () => {
  it("prints a payload as jsonb's canonical text", async () => {
    await fc.assert(
      fc.asyncProperty(json, async (v) => {
        const pgText = (await c.query('select $1::jsonb::text as t', [JSON.stringify(v)])).rows[0].t;
        expect(jsonbText(v)).toBe(pgText);
      }),
      RUNS,
    );
  });

  it('hashes an event as canon.event_hash does', async () => {
    const event = fc.record({
      prev: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }), { nil: null }),
      entity_id: text({ minLength: 1 }),
      seq: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      kind: text({ minLength: 1 }),
      payload: json,
      correlation_id: text(),
      causation_id: fc.option(fc.maxSafeInteger().map(Math.abs), { nil: null }),
      trace_id: fc.option(text(), { nil: null }),
      actor: text(),
      at: micros,
    });
    await fc.assert(
      fc.asyncProperty(event, async (e) => {
        const createdAt = isoMicros(e.at);
        const prev = e.prev ? Buffer.from(e.prev) : null;
        const sql = await c.query(
          `select encode(canon.event_hash($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10::timestamptz), 'hex') as h`,
          [
            prev,
            e.entity_id,
            e.seq,
            e.kind,
            JSON.stringify(e.payload),
            e.correlation_id,
            e.causation_id,
            e.trace_id,
            e.actor,
            createdAt,
          ],
        );
        const ts = eventHash(prev, hashInput({ ...e, payloadText: jsonbText(e.payload), createdAt }));
        expect(ts.toString('hex')).toBe(sql.rows[0].h);
      }),
      RUNS,
    );
  });

  it("writes a claimed run's trace id as the claim does", async () => {
    const type = `mirror_${randomBytes(4).toString('hex')}`;
    await c.query(ENGINE_SQL.upsertJobType, [type, 1000, 60, 1, 60, 10, 30, 'test']);
    // the claim accepts <role>-<uuid> (canon.claim_runs checks it)
    const workerId = fc.tuple(fc.stringMatching(/^[a-z]{1,12}$/), fc.uuid()).map(([role, id]) => `${role}-${id}`);
    let n = 0;
    await fc.assert(
      fc.asyncProperty(workerId, fc.integer({ min: 0, max: 50 }), async (worker, before) => {
        const entity = `mirror-${n++}-${randomBytes(3).toString('hex')}`;
        const ev = await appendEvent(c, { entityId: entity, kind: 'mirror.created' });
        const job = (
          await c.query(`select job_id from canon.enqueue_job($1, $2, '{}'::jsonb, null, $3)`, [
            type,
            entity,
            ev.position,
          ])
        ).rows[0].job_id;
        // earlier attempts, as if it had failed `before` times
        await c.query('update canon.jobs set attempts = $2 where id = $1', [job, before]);
        const claimed = (await c.query(ENGINE_SQL.claimRuns, ['execution', worker, 1000])).rows.find(
          (r) => Number(r.id) === Number(job),
        );
        expect(claimed, `job ${job} was not claimed`).toBeDefined();
        expect(claimed.trace_id).toBe(traceId(worker, Number(job), before + 1));
      }),
      { numRuns: 40 },
    );
  });

  it('backs off as canon.backoff_seconds does, with the same random draw', async () => {
    const type = `mirror_${randomBytes(4).toString('hex')}`;
    await c.query(ENGINE_SQL.upsertJobType, [type, 5, 60, 1, 60, 10, 30, 'test']);
    const seconds = fc.integer({ min: 0, max: 86_400_000 }).map((ms) => ms / 1000);
    await fc.assert(
      fc.asyncProperty(
        seconds,
        seconds,
        fc.integer({ min: 0, max: 60 }),
        fc.double({ min: -1, max: 1, noNaN: true }),
        async (base, max, attempts, seed) => {
          await c.query(
            'update canon.job_types set backoff_base_seconds = $2, backoff_max_seconds = $3 where name = $1',
            [type, base, max],
          );
          // the same seed gives the function the same draw that random() gives here
          await c.query('select setseed($1)', [seed]);
          const unit = (await c.query('select random() as r')).rows[0].r as number;
          await c.query('select setseed($1)', [seed]);
          const sql = Number((await c.query('select canon.backoff_seconds($1, $2) as s', [type, attempts])).rows[0].s);
          const ts = backoffSeconds({ baseSeconds: base, maxSeconds: max }, attempts, unit);
          expect(Math.abs(ts - sql)).toBeLessThanOrEqual(1e-9 * Math.max(1, sql));
        },
      ),
      RUNS,
    );
  });

  it("prints a rescued run's heartbeat time as format('%s', timestamptz) does in UTC", async () => {
    await c.query(`set timezone = 'UTC'`);
    await fc.assert(
      fc.asyncProperty(micros, async (us) => {
        const sql = (await c.query(`select format('%s', $1::timestamptz) as t`, [isoMicros(us)])).rows[0].t;
        expect(pgTime(us)).toBe(sql);
      }),
      RUNS,
    );
  });
});
