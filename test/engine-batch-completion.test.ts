// canon.complete_runs ends a batch of runs in set-based statements, and the
// core trigger queues decisions once per INSERT. These tests hold it to what the per-run
// canon.complete_run guarantees: the fence, one result event per run chained in order (also
// for two runs of one entity in the same batch), one queued decision per entity, the status
// rows, refusals recorded, and nothing written when the batch names a run that does not exist.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChains } from '../src/audit.js';
import { appendEvent, history } from '../src/ledger.js';
import { verifyStatus } from '../src/proof/status.js';
import { ENGINE_SQL } from '../src/sql/engine.js';
import { createTestDb, type TestDb } from './helpers.js';

const WORKER = 'execute-00000000-0000-4000-8000-000000000001';
const OTHER = 'execute-00000000-0000-4000-8000-000000000002';

async function declareNoop(db: TestDb) {
  await db.pool.query(ENGINE_SQL.upsertJobType, ['noop', 3, 60, 1, 60, 5, 30, 'test']);
}

/** Enqueues one noop job per entity id (repeats allowed) and claims them all as WORKER. */
async function claimed(db: TestDb, entities: string[]): Promise<{ run_id: number; id: number; entity_id: string }[]> {
  for (const [i, e] of entities.entries())
    await db.pool.query(`select canon.enqueue_job('noop', $1, '{}'::jsonb, $2)`, [e, `${e}:${i}:${Math.random()}`]);
  return (await db.pool.query(ENGINE_SQL.claimRuns, ['execution', WORKER, entities.length])).rows;
}

const batch = (runs: { run_id: number }[], worker = WORKER) =>
  JSON.stringify(
    runs.map((r) => ({ run_id: r.run_id, worker_id: worker, event_kind: 'noop.succeeded', result: { n: r.run_id } })),
  );

describe('canon.complete_runs, set-based', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb('batchcomplete');
    await declareNoop(db);
  });
  afterAll(async () => db.end());

  it('ends every run of a batch with one chained result event each, two runs of one entity included', async () => {
    const entities = ['bc-a', 'bc-b', 'bc-c', 'bc-a'];
    for (const e of new Set(entities)) await appendEvent(db.pool, { entityId: e, kind: 'thing.created', payload: {} });
    // the creations queued a decision each: mark them so the batch's own decisions can be told apart
    await db.pool.query(
      `update canon.jobs set status = 'cancelled', finished_at = now() where lane = 'decision' and entity_id like 'bc-%'`,
    );
    const runs = await claimed(db, entities);
    expect(runs).toHaveLength(4);
    const out = (await db.pool.query(ENGINE_SQL.completeMany, [batch(runs)])).rows;
    expect(out).toHaveLength(4);
    expect(out.every((r) => r.ok && Number.isInteger(Number(r.event_position)))).toBe(true);

    const events = (
      await db.pool.query(
        `select entity_id, seq, kind, payload, trace_id from canon.events where entity_id like 'bc-%' and kind = 'noop.succeeded' order by entity_id, seq`,
      )
    ).rows;
    expect(events.map((e) => `${e.entity_id}:${e.seq}`)).toEqual(['bc-a:2', 'bc-a:3', 'bc-b:2', 'bc-c:2']);
    for (const e of events) {
      const run = runs.find((r) => (e.payload as { job_id: number }).job_id === r.id)!;
      expect(e.payload).toEqual({ job_id: run.id, attempt: 1, result: { n: run.run_id } });
    }
    const runRows = (
      await db.pool.query(
        `select r.status, r.result_event_position, e.trace_id = r.trace_id as same_trace from canon.job_runs r join canon.events e on e.position = r.result_event_position where r.id = any ($1)`,
        [runs.map((r) => r.run_id)],
      )
    ).rows;
    expect(runRows).toHaveLength(4);
    expect(runRows.every((r) => r.status === 'succeeded' && r.same_trace)).toBe(true);
    const jobs = (
      await db.pool.query(`select status, locked_by, finished_at from canon.jobs where id = any ($1)`, [
        runs.map((r) => r.id),
      ])
    ).rows;
    expect(jobs.every((j) => j.status === 'succeeded' && j.locked_by === null && j.finished_at !== null)).toBe(true);

    // one queued decision per entity, its source the entity's first result event of the batch
    const decisions = (
      await db.pool.query(`
      select d.entity_id, d.source_event_position, d.correlation_id, d.via_gateway,
             (select min(position) from canon.events e where e.entity_id = d.entity_id and e.kind = 'noop.succeeded') as first_result
        from canon.jobs d where d.lane = 'decision' and d.status = 'queued' and d.entity_id like 'bc-%' order by d.entity_id`)
    ).rows;
    expect(decisions.map((d) => d.entity_id)).toEqual(['bc-a', 'bc-b', 'bc-c']);
    expect(
      decisions.every(
        (d) =>
          d.via_gateway &&
          Number(d.source_event_position) === Number(d.first_result) &&
          d.correlation_id === d.entity_id,
      ),
    ).toBe(true);

    expect((await verifyChains(db.pool, ['bc-a', 'bc-b', 'bc-c'])).ok).toBe(true);
    expect((await verifyStatus(db.pool)).differences).toEqual([]);
  });

  it("refuses the runs that are not the caller's, records each refusal, and ends the others", async () => {
    const runs = await claimed(db, ['rf-1', 'rf-2', 'rf-3']);
    await db.pool.query(`select canon.complete_run($1, $2, '{}'::jsonb, 'noop.succeeded')`, [runs[2].run_id, WORKER]); // already ended
    const mixed = JSON.parse(batch(runs)) as { worker_id: string }[];
    mixed[1].worker_id = OTHER; // not this worker's run
    const before = Number((await db.pool.query('select count(*) from canon.run_rejections')).rows[0].count);
    const out = new Map(
      (await db.pool.query(ENGINE_SQL.completeMany, [JSON.stringify(mixed)])).rows.map((r) => [Number(r.run_id), r]),
    );
    expect(out.get(runs[0].run_id)!.ok).toBe(true);
    expect(out.get(runs[1].run_id)!.ok).toBe(false);
    expect(out.get(runs[2].run_id)!.ok).toBe(false);
    expect(out.get(runs[1].run_id)!.event_position).toBeNull();
    const rejections = (
      await db.pool.query('select run_id, worker_id, action from canon.run_rejections order by id offset $1', [before])
    ).rows;
    expect(rejections.map((r) => [Number(r.run_id), r.worker_id, r.action]).sort()).toEqual(
      [
        [runs[1].run_id, OTHER, 'complete'],
        [runs[2].run_id, WORKER, 'complete'],
      ].sort(),
    );
    const results = (
      await db.pool.query(
        `select entity_id, count(*)::int as n from canon.events where entity_id like 'rf-%' and kind = 'noop.succeeded' group by 1 order by 1`,
      )
    ).rows;
    expect(results).toEqual([
      { entity_id: 'rf-1', n: 1 },
      { entity_id: 'rf-3', n: 1 },
    ]);
    expect(
      (await db.pool.query(`select status from canon.job_runs where id = $1`, [runs[1].run_id])).rows[0].status,
    ).toBe('running');
  });

  it('writes nothing when the batch names a run that does not exist', async () => {
    const runs = await claimed(db, ['mr-1', 'mr-2']);
    const bad = JSON.stringify([
      ...JSON.parse(batch(runs)),
      { run_id: 987654321, worker_id: WORKER, event_kind: 'noop.succeeded', result: null },
    ]);
    await expect(db.pool.query(ENGINE_SQL.completeMany, [bad])).rejects.toMatchObject({
      code: 'CN006',
      message: 'run 987654321 does not exist',
    });
    const still = (
      await db.pool.query(`select status from canon.job_runs where id = any ($1)`, [runs.map((r) => r.run_id)])
    ).rows;
    expect(still.map((r) => r.status)).toEqual(['running', 'running']);
    expect(
      (await db.pool.query(`select count(*)::int as n from canon.events where entity_id like 'mr-%'`)).rows[0].n,
    ).toBe(0);
  });
});

describe('canon.claim_runs_with_history', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb('claimhistory');
    await declareNoop(db);
  });
  afterAll(async () => db.end());

  it("claims like claim_runs and gives each job its entity's history, as a row read gives it", async () => {
    await appendEvent(db.pool, {
      entityId: 'ch-1',
      kind: 'thing.created',
      payload: { n: 1, nested: { a: [1, 'x'] } },
      correlationId: 'corr-1',
    });
    await appendEvent(db.pool, { entityId: 'ch-1', kind: 'thing.changed', payload: {}, causationId: 1 });
    for (const e of ['ch-1', 'ch-2']) await db.pool.query(`select canon.enqueue_job('noop', $1)`, [e]);
    const rows = (await db.pool.query(ENGINE_SQL.claimRunsWithHistory, ['execution', WORKER, 10])).rows;
    expect(rows.map((r) => r.entity_id).sort()).toEqual(['ch-1', 'ch-2']);
    const runs = (
      await db.pool.query(`select id, job_id, trace_id from canon.job_runs where worker_id = $1 order by id`, [WORKER])
    ).rows;
    for (const r of rows) {
      expect(
        runs.some(
          (x) => Number(x.id) === Number(r.run_id) && Number(x.job_id) === Number(r.id) && x.trace_id === r.trace_id,
        ),
      ).toBe(true);
      const expected = await history(db.pool, r.entity_id);
      expect(r.events.map((e: { created_at: string }) => ({ ...e, created_at: new Date(e.created_at) }))).toEqual(
        expected,
      );
    }
    expect(rows.find((r) => r.entity_id === 'ch-2').events).toEqual([]);
  });

  it('commits the claim without waiting for its flush, and only the claim', async () => {
    await db.pool.query(`select canon.enqueue_job('noop', 'ch-3')`);
    const c = await db.pool.connect();
    try {
      await c.query('begin');
      const claimed = (await c.query(ENGINE_SQL.claimRunsWithHistory, ['execution', WORKER, 1])).rows;
      expect(claimed).toHaveLength(1);
      expect((await c.query(`select current_setting('synchronous_commit') as v`)).rows[0].v).toBe('off');
      await c.query('rollback');
      expect((await c.query(`select current_setting('synchronous_commit') as v`)).rows[0].v).toBe('on');
    } finally {
      c.release();
    }
  });
});

describe('the core trigger, once per statement', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb('coretrigger');
  });
  afterAll(async () => db.end());

  it('queues one decision per entity for a multi-row INSERT, none for job.<type>.required events', async () => {
    await db.pool.query(`
      insert into canon.events (entity_id, kind, payload)
      select e, k, '{}'::jsonb from (values ('ct-1', 'a.happened'), ('ct-1', 'b.happened'), ('ct-2', 'a.happened'),
                                            ('ct-3', 'job.noop.required')) v(e, k)`);
    const d = (
      await db.pool.query(
        `select entity_id, source_event_position from canon.jobs where lane = 'decision' order by entity_id`,
      )
    ).rows;
    expect(d.map((r) => r.entity_id)).toEqual(['ct-1', 'ct-2']);
    const first = (await db.pool.query(`select position from canon.events where entity_id = 'ct-1' and seq = 1`))
      .rows[0].position;
    expect(Number(d[0].source_event_position)).toBe(Number(first));
    expect((await verifyChains(db.pool, ['ct-1', 'ct-2', 'ct-3'])).ok).toBe(true);
  });
});
