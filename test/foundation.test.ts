// The foundation on a real Postgres: the ledger's concurrency and immutability, the gateway's
// dedupe and strict/compat guard, lane-pure claims under concurrency, and the seed guides' SQL.

import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChains } from '../src/audit.js';
import { CanonError, PG, pgCode } from '../src/errors.js';
import { appendEvent } from '../src/ledger.js';
import { createTestDb, root, type TestDb } from './helpers.js';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('foundation');
});
afterAll(async () => db.end());

const worker = (role = 'test') => `${role}-${randomUUID()}`;

describe('ledger', () => {
  it('50 concurrent writers with expected seq leave 1..N without gap or duplicate, and the chain verifies', async () => {
    const entity = `doc-${randomUUID()}`;
    const writers = 50;
    const perWriter = 2;
    let conflicts = 0;
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i++) {
          for (;;) {
            const head =
              (await db.pool.query('select head_seq from canon.entities where id = $1', [entity])).rows[0]?.head_seq ??
              0;
            try {
              await appendEvent(db.pool, {
                entityId: entity,
                kind: 'note.added',
                payload: { w, i },
                expectedSeq: head,
                actor: `writer-${w}`,
              });
              break;
            } catch (e) {
              expect(e).toBeInstanceOf(CanonError);
              expect((e as CanonError).exitCode).toBe(4);
              conflicts++;
            }
          }
        }
      }),
    );
    const seqs = (
      await db.pool.query('select seq from canon.events where entity_id = $1 order by seq', [entity])
    ).rows.map((r) => r.seq);
    expect(seqs).toEqual(Array.from({ length: writers * perWriter }, (_, i) => i + 1));
    expect(conflicts).toBeGreaterThan(0); // the test really raced
    const audit = await verifyChains(db.pool, entity);
    expect(audit.ok).toBe(true);
    expect(audit.events).toBe(writers * perWriter);
  });

  it('refuses UPDATE, DELETE and TRUNCATE on the ledger and keeps the data', async () => {
    const entity = `doc-${randomUUID()}`;
    await appendEvent(db.pool, { entityId: entity, kind: 'document.created', payload: { content: 'x' } });
    const before = (await db.pool.query('select * from canon.events where entity_id = $1', [entity])).rows;
    for (const sql of [
      `update canon.events set payload = '{"content":"y"}' where entity_id = '${entity}'`,
      `delete from canon.events where entity_id = '${entity}'`,
      'truncate canon.events cascade',
      `update events set kind = 'x' where entity_id = '${entity}'`,
      `delete from events where entity_id = '${entity}'`,
    ]) {
      const err = await db.pool.query(sql).catch((e) => e);
      expect(pgCode(err), sql).toBe(PG.CANON_IMMUTABLE);
    }
    const after = (await db.pool.query('select * from canon.events where entity_id = $1', [entity])).rows;
    expect(after).toEqual(before);
  });

  it('names the stale seq in the conflict error', async () => {
    const entity = `doc-${randomUUID()}`;
    await appendEvent(db.pool, { entityId: entity, kind: 'a' });
    const e = await appendEvent(db.pool, { entityId: entity, kind: 'b', expectedSeq: 0 }).catch((x) => x);
    expect(e.message).toMatch(/expected 0, but the entity is at seq 1/);
  });
});

describe('gateway', () => {
  it('keeps one job under 20 concurrent identical requests', async () => {
    await db.pool.query(
      `insert into canon.job_types (name, lane) values ('gw_probe', 'execution') on conflict do nothing`,
    );
    const entity = `doc-${randomUUID()}`;
    const key = `${entity}:gw_probe:1`;
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        db.pool
          .query(`select job_id, created from canon.enqueue_job('gw_probe', $1, '{}', $2)`, [entity, key])
          .then((r) => r.rows[0]),
      ),
    );
    const ids = new Set(results.map((r) => r.job_id));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => r.created).length).toBe(1);
    const n = (await db.pool.query('select count(*)::int as n from canon.jobs where dedupe_key = $1', [key])).rows[0].n;
    expect(n).toBe(1);
  });

  it('refuses an unknown type or a wrong lane', async () => {
    const e1 = await db.pool.query(`select * from canon.enqueue_job('no_such_type', 'x')`).catch((e) => e);
    expect(pgCode(e1)).toBe(PG.CANON_UNKNOWN_TYPE);
    const e2 = await db.pool
      .query(`select * from canon.enqueue_job('decide', 'x', '{}', null, null, null, null, 0, 'execution')`)
      .catch((e) => e);
    expect(pgCode(e2)).toBe(PG.CANON_UNKNOWN_TYPE);
  });

  it('carries the correlation id from the source event', async () => {
    await db.pool.query(
      `insert into canon.job_types (name, lane) values ('gw_corr', 'execution') on conflict do nothing`,
    );
    const e = await appendEvent(db.pool, {
      entityId: `doc-${randomUUID()}`,
      kind: 'document.created',
      correlationId: 'corr-42',
    });
    const j = (
      await db.pool.query(`select * from canon.enqueue_job('gw_corr', $1, '{}', null, $2)`, [e.entity_id, e.position])
    ).rows[0];
    const row = (
      await db.pool.query('select correlation_id, source_event_position, via_gateway from canon.jobs where id = $1', [
        j.job_id,
      ])
    ).rows[0];
    expect(row).toEqual({ correlation_id: 'corr-42', source_event_position: e.position, via_gateway: true });
  });

  it('strict mode refuses a direct INSERT; compat mode accepts, marks and counts it', async () => {
    const entity = `doc-${randomUUID()}`;
    await appendEvent(db.pool, { entityId: entity, kind: 'document.created' });
    const direct = `insert into canon.jobs (type, entity_id) values ('decide', '${entity}')`;
    const c = await db.pool.connect();
    try {
      await c.query(`update canon.settings set value = 'strict' where key = 'gateway_mode'`);
      const err = await c.query(direct).catch((e) => e);
      expect(pgCode(err)).toBe(PG.CANON_GATEWAY);
      expect(err.message).toMatch(/refused: gateway mode is strict/);
      await c.query(`update canon.settings set value = 'compat' where key = 'gateway_mode'`);
      const before = (await c.query('select count(*)::int as n from canon.jobs where not via_gateway')).rows[0].n;
      await c.query(`delete from canon.jobs where entity_id = '${entity}' and status = 'queued'`);
      await c.query(direct);
      const after = (await c.query('select count(*)::int as n from canon.jobs where not via_gateway')).rows[0].n;
      expect(after).toBe(before + 1);
    } finally {
      await c.query(`update canon.settings set value = 'compat' where key = 'gateway_mode'`);
      c.release();
    }
  });
});

describe('core trigger', () => {
  it('enqueues one decision job per entity in the same transaction as the event', async () => {
    const entity = `doc-${randomUUID()}`;
    const c = await db.pool.connect();
    try {
      await c.query('begin');
      await appendEvent(c, { entityId: entity, kind: 'document.created' });
      await appendEvent(c, { entityId: entity, kind: 'document.note' });
      const inTx = (
        await c.query(`select count(*)::int as n from canon.jobs where entity_id = $1 and lane = 'decision'`, [entity])
      ).rows[0].n;
      expect(inTx).toBe(1); // at most one queued decision job per entity
      await c.query('rollback');
    } finally {
      c.release();
    }
    const after = (await db.pool.query(`select count(*)::int as n from canon.jobs where entity_id = $1`, [entity]))
      .rows[0].n;
    expect(after).toBe(0);
  });
});

describe('claims', () => {
  it('each claim function returns only its lane under concurrent claimers, and no job is claimed twice', async () => {
    await db.pool.query(
      `insert into canon.job_types (name, lane) values ('claim_probe', 'execution') on conflict do nothing`,
    );
    await db.pool.query(
      `update canon.jobs set status = 'cancelled', finished_at = now(), locked_by = null where status in ('queued','running')`,
    );
    const n = 200;
    for (let i = 0; i < n; i++) {
      const entity = `claim-${i}-${randomUUID()}`;
      await appendEvent(db.pool, { entityId: entity, kind: 'document.created' }); // decision job via the core trigger
      await db.pool.query(`select * from canon.enqueue_job('claim_probe', $1)`, [entity]);
    }
    const claimed: { id: number; lane: string; fn: string; trace_id: string }[] = [];
    await Promise.all(
      Array.from({ length: 16 }, async (_, k) => {
        const fn = k % 2 ? 'claim_initial_decision_jobs' : 'claim_orchestrator_jobs';
        const w = worker(k % 2 ? 'decide' : 'execute');
        for (;;) {
          const rows = (await db.pool.query(`select id, lane, trace_id from canon.${fn}($1, 7)`, [w])).rows;
          if (rows.length === 0) break;
          for (const r of rows) claimed.push({ ...r, fn });
        }
      }),
    );
    expect(claimed.filter((c) => c.fn === 'claim_initial_decision_jobs').every((c) => c.lane === 'decision')).toBe(
      true,
    );
    expect(claimed.filter((c) => c.fn === 'claim_orchestrator_jobs').every((c) => c.lane === 'execution')).toBe(true);
    expect(new Set(claimed.map((c) => c.id)).size).toBe(claimed.length);
    expect(claimed.length).toBe(2 * n);
    // each claim created its run row with the trace id <worker id>-<job id>-<attempt>
    const runs = (
      await db.pool.query(`select job_id, trace_id, worker_id, attempt from canon.job_runs where job_id = any($1)`, [
        claimed.map((c) => c.id),
      ])
    ).rows;
    expect(runs.length).toBe(2 * n);
    for (const r of runs) expect(r.trace_id).toBe(`${r.worker_id}-${r.job_id}-${r.attempt}`);
  });
});

describe('seed guides', () => {
  const statements = (file: string) =>
    fs
      .readFileSync(path.join(root, 'test/fixtures', file), 'utf8')
      .split(/;\s*\n/)
      .map((s) => s.trim())
      .filter((s) => s.replace(/--.*$/gm, '').trim().length > 0);

  it('runs every statement of guides 000 and 002 unchanged, on a database with runs', async () => {
    const entity = `doc-${randomUUID()}`;
    await appendEvent(db.pool, { entityId: entity, kind: 'document.created' });
    const w = worker('decide');
    const [job] = (await db.pool.query(`select id from canon.claim_initial_decision_jobs($1, 1)`, [w])).rows;
    const run = (await db.pool.query(`select id from canon.job_runs where job_id = $1`, [job.id])).rows[0];
    await db.pool.query(`select * from canon.complete_run($1, $2)`, [run.id, w]);
    await db.pool.query(
      `insert into canon.flags (name, enabled) values ('D1_RUN_TSA_ENABLED', false) on conflict do nothing`,
    );
    const all = [...statements('seed-guide-000.sql'), ...statements('seed-guide-002.sql')];
    expect(all.length).toBe(19);
    for (const sql of all) {
      await expect(db.pool.query(sql), sql).resolves.toBeDefined();
    }
    const rate = await db.pool.query(all.find((s) => s.includes('success_rate'))!);
    expect(Number(rate.rows[0].success_rate)).toBeGreaterThan(0);
  });

  it("records the guide's UPDATE feature_flags in flag_changes with the database user as actor", async () => {
    await db.pool.query(
      `insert into canon.flags (name, enabled) values ('D1_RUN_TSA_ENABLED', false) on conflict do nothing`,
    );
    await db.pool.query(
      `UPDATE feature_flags SET enabled = false, updated_at = NOW() WHERE flag_name = 'D1_RUN_TSA_ENABLED'`,
    );
    await db.pool.query(
      `UPDATE feature_flags \nSET enabled = true, updated_at = NOW()\nWHERE flag_name = 'D1_RUN_TSA_ENABLED'`,
    );
    const last = (
      await db.pool.query(
        `select actor, source, before, after from canon.flag_changes where flag_name = 'D1_RUN_TSA_ENABLED' order by id desc limit 1`,
      )
    ).rows[0];
    const user = (await db.pool.query('select session_user as u')).rows[0].u;
    expect(last.actor).toBe(user);
    expect(last.source).toBe('sql');
    expect(last.before.enabled).toBe(false);
    expect(last.after.enabled).toBe(true);
  });
});
