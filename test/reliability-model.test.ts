// A model-based test (fast-check) of the queue's SQL API: random sequences of append /
// enqueue / claim / heartbeat / complete / fail / kill / rescue / late completion / retry run
// against canon's functions on a real database and against a small model of what DESIGN.md
// promises. Every answer (claimed jobs, fences, outcomes, rescued jobs) is checked against the
// model as it happens; at the end of each sequence every job, run and event of its entities
// must be what the model says, and the invariants (one result event per job, no partial
// state, no gap, intact hash chains) must hold. Each sequence uses fresh entity ids.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actOnJob } from '../src/observe/actions.js';
import { createTestDb, type TestDb } from './helpers.js';
import { checkInvariants } from './support/invariants.js';
import { report, soak } from './support/report.js';

const TYPES = ['m_a', 'm_b'] as const;
const MAX_ATTEMPTS = 2;
const ENTITIES = 3;
const WORKERS = 3;

type Lane = 'decision' | 'execution';
interface MJob {
  id: number;
  lane: Lane;
  type: string;
  entity: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  attempts: number;
  max: number;
  run?: number; // the running run
  stale: boolean; // its worker died long ago: rescue takes it
  retried: boolean;
  dedupe?: string;
}
interface MRun {
  id: number;
  job: number;
  worker: string;
  status: 'running' | 'succeeded' | 'failed';
}
interface Model {
  jobs: Map<number, MJob>;
  runs: Map<number, MRun>;
  events: Map<string, string[]>;
  workers: string[];
  held: Map<string, number[]>; // runs each live worker believes it owns
  zombies: { worker: string; run: number }[]; // runs of killed workers that may come back late
}
interface Real {
  c: pg.Client;
  pool: pg.Pool;
  entities: string[];
}

const newWorker = () => `model-${randomUUID()}`;
let db: TestDb;
let seq = 0;
const totals = { sequences: 0, commands: 0, fenced: 0, rescued: 0, retried: 0, dead: 0, superseded: 0 };

// ─── model helpers ──────────────────────────────────────────────────────────────────────
const queuedDecision = (m: Model, e: string) =>
  [...m.jobs.values()].find((j) => j.entity === e && j.lane === 'decision' && j.status === 'queued');
const maxId = (m: Model) => Math.max(0, ...m.jobs.keys());
const owned = (m: Model, runId: number, worker: string) => {
  const r = m.runs.get(runId);
  const j = r && m.jobs.get(r.job);
  return !!r && !!j && r.status === 'running' && r.worker === worker && j.status === 'running' && j.run === runId;
};

/** An event was appended: the core trigger asks for a decision unless it is a job.*.required event. */
async function onEvent(m: Model, r: Real, e: string, kind: string): Promise<void> {
  (m.events.get(e) ?? m.events.set(e, []).get(e)!).push(kind);
  if (/^job\..+\.required$/.test(kind)) return;
  const q = await r.c.query(
    `select id from canon.jobs where entity_id = $1 and lane = 'decision' and status = 'queued'`,
    [e],
  );
  expect(q.rows.length, `a queued decision for ${e}`).toBe(1);
  const existing = queuedDecision(m, e);
  if (existing) expect(q.rows[0].id, 'the queued decision is reused').toBe(existing.id);
  else {
    expect(q.rows[0].id).toBeGreaterThan(maxId(m));
    m.jobs.set(q.rows[0].id, {
      id: q.rows[0].id,
      lane: 'decision',
      type: 'decide',
      entity: e,
      status: 'queued',
      attempts: 0,
      max: 10,
      stale: false,
      retried: false,
    });
  }
}

/** The job ends (completed, or dead): its run is gone from every worker's hands. */
function release(m: Model, runId: number): void {
  for (const [w, runs] of m.held)
    m.held.set(
      w,
      runs.filter((x) => x !== runId),
    );
}

/** Back to the queue after a failure or a rescue; a decision with a newer one queued is superseded (docs/decisions/0013). */
function requeue(m: Model, j: MJob): void {
  j.run = undefined;
  j.stale = false;
  const newer = j.lane === 'decision' && queuedDecision(m, j.entity);
  j.status = newer ? 'cancelled' : 'queued';
  if (newer) totals.superseded++;
}

async function bury(m: Model, r: Real, j: MJob): Promise<void> {
  j.status = 'failed';
  j.run = undefined;
  totals.dead++;
  if (j.lane === 'execution') await onEvent(m, r, j.entity, `${j.type}.failed`);
}

// ─── commands ───────────────────────────────────────────────────────────────────────────
type Cmd = fc.AsyncCommand<Model, Real, false>;

class Append implements Cmd {
  constructor(
    readonly e: number,
    readonly kind: string,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const e = r.entities[this.e];
    await r.c.query(`select canon.append_event($1, $2, '{}'::jsonb)`, [e, this.kind]);
    await onEvent(m, r, e, this.kind);
  }
  toString = () => `append(e${this.e}, ${this.kind})`;
}

class Enqueue implements Cmd {
  constructor(
    readonly e: number,
    readonly t: number,
    readonly dedupe: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const e = r.entities[this.e];
    const type = TYPES[this.t];
    const key = this.dedupe === 0 ? null : `${e}:model:${this.dedupe}`;
    const row = (
      await r.c.query(
        `select job_id, created from canon.enqueue_job($1, $2, '{}'::jsonb, $3, null, null, null, 0, 'execution')`,
        [type, e, key],
      )
    ).rows[0];
    const twin = key
      ? [...m.jobs.values()].find((j) => j.dedupe === key && (j.status === 'queued' || j.status === 'running'))
      : undefined;
    if (twin) expect(row, 'dedupe returns the live twin').toEqual({ job_id: twin.id, created: false });
    else {
      expect(row.created).toBe(true);
      expect(row.job_id).toBeGreaterThan(maxId(m));
      m.jobs.set(row.job_id, {
        id: row.job_id,
        lane: 'execution',
        type,
        entity: e,
        status: 'queued',
        attempts: 0,
        max: MAX_ATTEMPTS,
        stale: false,
        retried: false,
        dedupe: key ?? undefined,
      });
    }
  }
  toString = () => `enqueue(e${this.e}, ${TYPES[this.t]}, dedupe ${this.dedupe})`;
}

class Claim implements Cmd {
  constructor(
    readonly lane: Lane,
    readonly w: number,
    readonly n: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const worker = m.workers[this.w];
    const rows = (
      await r.c.query(`select id, lane, attempts, trace_id from canon.claim_jobs($1, $2, $3)`, [
        this.lane,
        worker,
        this.n,
      ])
    ).rows as { id: number; lane: string; attempts: number; trace_id: string }[];
    const claimable = [...m.jobs.values()].filter((j) => j.lane === this.lane && j.status === 'queued');
    expect(rows.length, 'a claim takes what is there, up to its limit').toBe(Math.min(this.n, claimable.length));
    for (const row of rows) {
      const j = m.jobs.get(row.id);
      expect(
        j && j.status === 'queued' && j.lane === this.lane,
        `claimed job ${row.id} was queued in lane ${this.lane}`,
      ).toBe(true);
      const runId = (await r.c.query(`select id from canon.job_runs where trace_id = $1`, [row.trace_id])).rows[0]
        .id as number;
      j!.status = 'running';
      j!.attempts++;
      j!.run = runId;
      j!.stale = false;
      expect(row.attempts).toBe(j!.attempts);
      expect(row.trace_id).toBe(`${worker}-${row.id}-${j!.attempts}`);
      m.runs.set(runId, { id: runId, job: row.id, worker, status: 'running' });
      m.held.get(worker)!.push(runId);
    }
  }
  toString = () => `claim(${this.lane}, w${this.w}, ${this.n})`;
}

class Heartbeat implements Cmd {
  constructor(readonly w: number) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const worker = m.workers[this.w];
    const mine = m.held.get(worker)!;
    const got = (await r.c.query(`select canon.heartbeat_runs($1, $2) as id`, [worker, mine])).rows
      .map((x) => x.id as number)
      .sort();
    expect(got).toEqual(mine.filter((id) => owned(m, id, worker)).sort());
  }
  toString = () => `heartbeat(w${this.w})`;
}

/** Ends one of a worker's runs: complete, fail (retryable or permanent); `late` uses a killed worker's run. */
class End implements Cmd {
  constructor(
    readonly how: 'complete' | 'fail' | 'fail-permanent',
    readonly w: number,
    readonly pick: number,
    readonly late: boolean,
  ) {}
  check(m: Model) {
    return this.late ? m.zombies.length > 0 : m.held.get(m.workers[this.w])!.length > 0;
  }
  async run(m: Model, r: Real) {
    let worker: string, runId: number;
    if (this.late) {
      const z = m.zombies.splice(this.pick % m.zombies.length, 1)[0];
      worker = z.worker;
      runId = z.run;
    } else {
      worker = m.workers[this.w];
      const mine = m.held.get(worker)!;
      runId = mine[this.pick % mine.length];
    }
    const expectOk = owned(m, runId, worker);
    const run = m.runs.get(runId)!;
    const j = m.jobs.get(run.job)!;
    release(m, runId);
    if (this.how === 'complete') {
      const kind = j.lane === 'execution' ? `${j.type}.succeeded` : null;
      const row = (
        await r.c.query(`select ok, event_position from canon.complete_run($1, $2, '{"ok": true}'::jsonb, $3)`, [
          runId,
          worker,
          kind,
        ])
      ).rows[0];
      expect(row.ok, `complete run ${runId} by ${this.late ? 'a late' : 'its'} worker`).toBe(expectOk);
      if (!expectOk) return void totals.fenced++;
      run.status = 'succeeded';
      j.status = 'succeeded';
      j.run = undefined;
      if (kind) {
        expect(row.event_position).toBeGreaterThan(0);
        await onEvent(m, r, j.entity, kind);
      }
      return;
    }
    const permanent = this.how === 'fail-permanent';
    const row = (
      await r.c.query(`select ok, outcome from canon.fail_run($1, $2, 'model failure', $3, 'handler_error')`, [
        runId,
        worker,
        permanent,
      ])
    ).rows[0];
    if (!expectOk) {
      totals.fenced++;
      return void expect(row).toEqual({ ok: false, outcome: 'fenced' });
    }
    run.status = 'failed';
    const dead = permanent || j.attempts >= j.max;
    expect(row).toEqual({ ok: true, outcome: dead ? 'dead' : 'retry' });
    if (dead) await bury(m, r, j);
    else requeue(m, j);
  }
  toString = () => `${this.how}(${this.late ? 'late' : `w${this.w}`}, #${this.pick})`;
}

/** A worker dies; a new one takes its place. Its runs stay running until their TTL passes (aged here). */
class Kill implements Cmd {
  constructor(readonly w: number) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const worker = m.workers[this.w];
    await r.c.query(
      `update canon.jobs set heartbeat_at = heartbeat_at - interval '1 day' where locked_by = $1 and status = 'running'`,
      [worker],
    );
    for (const id of m.held.get(worker)!) {
      m.zombies.push({ worker, run: id });
      const j = m.jobs.get(m.runs.get(id)!.job)!;
      if (owned(m, id, worker)) j.stale = true;
    }
    m.held.delete(worker);
    m.workers[this.w] = newWorker();
    m.held.set(m.workers[this.w], []);
  }
  toString = () => `kill(w${this.w})`;
}

class Rescue implements Cmd {
  check = () => true;
  async run(m: Model, r: Real) {
    const got = (await r.c.query(`select job_id, run_id, outcome from canon.rescue_stuck(1000)`)).rows as {
      job_id: number;
      run_id: number;
      outcome: string;
    }[];
    const want = [...m.jobs.values()].filter((j) => j.status === 'running' && j.stale);
    expect(got.map((g) => g.job_id).sort()).toEqual(want.map((j) => j.id).sort());
    // in the order rescue took them (oldest heartbeat first): a requeued decision and the
    // decision a burial asks for depend on what was queued just before
    for (const g of got) {
      const j = m.jobs.get(g.job_id)!;
      expect(g.run_id).toBe(j.run);
      m.runs.get(j.run!)!.status = 'failed';
      totals.rescued++;
      const dead = j.attempts >= j.max;
      expect(g.outcome).toBe(dead ? 'dead' : 'retry');
      if (dead) await bury(m, r, j);
      else requeue(m, j);
    }
  }
  toString = () => 'rescue()';
}

/** `canon jobs retry`: a dead job gets a new job through the gateway (and a required event for execution jobs). */
class Retry implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Model) => [...m.jobs.values()].some((j) => j.status === 'failed');
  async run(m: Model, r: Real) {
    const dead = [...m.jobs.values()].filter((j) => j.status === 'failed');
    const j = dead[this.pick % dead.length];
    if (j.retried) {
      await expect(actOnJob(r.pool, j.id, 'retry', { actor: 'model' })).rejects.toThrow(/already retried/);
      return;
    }
    const twin = j.lane === 'decision' ? queuedDecision(m, j.entity) : undefined;
    const res = await actOnJob(r.pool, j.id, 'retry', { actor: 'model', reason: 'model retry' });
    j.retried = true;
    totals.retried++;
    if (j.lane === 'execution') {
      const kind = `job.${j.type}.required`;
      const ordinal = (m.events.get(j.entity) ?? []).filter((k) => k === kind).length + 1;
      await onEvent(m, r, j.entity, kind);
      expect(res.new_job_id).toBeGreaterThan(maxId(m));
      m.jobs.set(res.new_job_id!, {
        ...j,
        id: res.new_job_id!,
        status: 'queued',
        attempts: 0,
        run: undefined,
        stale: false,
        retried: false,
        dedupe: `${j.entity}:${j.type}:${ordinal}`,
      });
    } else if (twin) {
      expect(res.new_job_id, 'a decision retry joins the queued decision').toBe(twin.id);
    } else {
      expect(res.new_job_id).toBeGreaterThan(maxId(m));
      m.jobs.set(res.new_job_id!, {
        ...j,
        id: res.new_job_id!,
        status: 'queued',
        attempts: 0,
        run: undefined,
        stale: false,
        retried: false,
      });
    }
  }
  toString = () => `retry(#${this.pick})`;
}

const commands = fc.commands(
  [
    fc.tuple(fc.nat(ENTITIES - 1), fc.constantFrom('doc.created', 'doc.noted')).map(([e, k]) => new Append(e, k)),
    fc.tuple(fc.nat(ENTITIES - 1), fc.nat(TYPES.length - 1), fc.nat(2)).map(([e, t, d]) => new Enqueue(e, t, d)),
    fc
      .tuple(fc.constantFrom<Lane>('decision', 'execution'), fc.nat(WORKERS - 1), fc.integer({ min: 1, max: 3 }))
      .map(([l, w, n]) => new Claim(l, w, n)),
    fc.nat(WORKERS - 1).map((w) => new Heartbeat(w)),
    fc
      .tuple(
        fc.constantFrom('complete', 'complete', 'fail', 'fail-permanent') as fc.Arbitrary<
          'complete' | 'fail' | 'fail-permanent'
        >,
        fc.nat(WORKERS - 1),
        fc.nat(9),
        fc.boolean(),
      )
      .map(([h, w, p, late]) => new End(h, w, p, late)),
    fc.nat(WORKERS - 1).map((w) => new Kill(w)),
    fc.constant(new Rescue()),
    fc.nat(9).map((p) => new Retry(p)),
  ],
  { maxCommands: 40, size: 'large' },
);

/** After a sequence: the database holds exactly the model's jobs, runs and events for its entities. */
async function compare(m: Model, r: Real): Promise<void> {
  const jobs = (
    await r.c.query(`select id, status, attempts from canon.jobs where entity_id = any($1) order by id`, [r.entities])
  ).rows;
  expect(jobs).toEqual(
    [...m.jobs.values()].sort((a, b) => a.id - b.id).map((j) => ({ id: j.id, status: j.status, attempts: j.attempts })),
  );
  const runs = (
    await r.c.query(`select id, status from canon.job_runs where entity_id = any($1) order by id`, [r.entities])
  ).rows;
  expect(runs).toEqual([...m.runs.values()].sort((a, b) => a.id - b.id).map((x) => ({ id: x.id, status: x.status })));
  for (const e of r.entities) {
    const kinds = (await r.c.query(`select kind from canon.events where entity_id = $1 order by seq`, [e])).rows.map(
      (x) => x.kind,
    );
    expect(kinds, `events of ${e}`).toEqual(m.events.get(e) ?? []);
  }
  const inv = await checkInvariants(r.c, r.entities, { duplicates: false });
  expect(inv.violations).toEqual({});
}

describe('the queue against a model', () => {
  let c: pg.Client;
  beforeAll(async () => {
    db = await createTestDb('model');
    c = new pg.Client({ connectionString: db.url });
    await c.connect();
    for (const t of TYPES) {
      await c.query(
        `insert into canon.job_types (name, lane, max_attempts, timeout_seconds, backoff_base_seconds, backoff_max_seconds, breaker_threshold)
         values ($1, 'execution', $2, 300, 0, 0, 1000000)`,
        [t, MAX_ATTEMPTS],
      );
    }
    // retries and rescues come back at once, so a sequence can claim them again
    await c.query(`update canon.job_types set backoff_base_seconds = 0, backoff_max_seconds = 0 where name = 'decide'`);
  });
  afterAll(async () => {
    await c?.end();
    await db?.end();
  });

  it('a decision going back to the queue while a newer one is queued is superseded, and does not abort the rescue of the others', async () => {
    const e = `sup-${randomUUID().slice(0, 8)}`;
    const w = newWorker();
    await c.query(`select canon.append_event($1, 'doc.created', '{}'::jsonb)`, [e]);
    await c.query(`select canon.enqueue_job('m_a', $1, '{}'::jsonb, null, null, null, null, 0, 'execution')`, [e]);
    const claimed = [
      ...(await c.query(`select id from canon.claim_jobs('decision', $1, 10)`, [w])).rows,
      ...(await c.query(`select id from canon.claim_jobs('execution', $1, 10)`, [w])).rows,
    ].map((x) => x.id);
    await c.query(`select canon.append_event($1, 'doc.noted', '{}'::jsonb)`, [e]); // a newer decision is queued
    await c.query(`update canon.jobs set heartbeat_at = heartbeat_at - interval '1 day' where locked_by = $1`, [w]);
    const rescued = (
      await c.query(`select job_id, outcome from canon.rescue_stuck(1000) where job_id = any($1)`, [claimed])
    ).rows;
    expect(rescued.map((x) => x.job_id).sort()).toEqual(claimed.sort());
    const states = (
      await c.query(`select lane, status, last_reason from canon.jobs where entity_id = $1 order by id`, [e])
    ).rows;
    expect(states).toEqual([
      { lane: 'decision', status: 'cancelled', last_reason: 'superseded' },
      { lane: 'execution', status: 'queued', last_reason: 'ttl_exceeded' },
      { lane: 'decision', status: 'queued', last_reason: null },
    ]);
    await c.query(
      `update canon.jobs set status = 'cancelled', finished_at = now() where entity_id = $1 and status = 'queued'`,
      [e],
    );
  });

  it('append / enqueue / claim / heartbeat / complete / fail / kill / rescue / late completion / retry keep every guarantee', async () => {
    const numRuns = soak(Number(process.env.CANON_MODEL_RUNS ?? 1000));
    await fc.assert(
      fc.asyncProperty(commands, async (cmds) => {
        const tag = `m${seq++}x${randomUUID().slice(0, 6)}`;
        const entities = Array.from({ length: ENTITIES }, (_, i) => `${tag}-${i}`);
        const workers = Array.from({ length: WORKERS }, newWorker);
        const model: Model = {
          jobs: new Map(),
          runs: new Map(),
          events: new Map(),
          workers,
          held: new Map(workers.map((w) => [w, []])),
          zombies: [],
        };
        const real: Real = { c, pool: db.pool, entities };
        totals.sequences++;
        try {
          totals.commands += [...cmds].length;
          await fc.asyncModelRun(() => ({ model, real }), [...cmds]);
          await compare(model, real);
        } finally {
          // leave nothing queued or running: the next sequence's claims must see only its own jobs
          await c.query(
            `update canon.job_runs set status = 'cancelled', finished_at = now(), reason = 'cancelled' where entity_id = any($1) and status = 'running'`,
            [entities],
          );
          await c.query(
            `update canon.jobs set status = 'cancelled', finished_at = now(), locked_by = null where entity_id = any($1) and status in ('queued', 'running')`,
            [entities],
          );
        }
      }),
      {
        numRuns,
        seed: process.env.CANON_MODEL_SEED ? Number(process.env.CANON_MODEL_SEED) : undefined,
        endOnFailure: true,
      },
    );
    const whole = await checkInvariants(db.pool, null, { duplicates: false });
    report('model-based (fast-check)', {
      runs: totals.sequences,
      commands: totals.commands,
      fenced: totals.fenced,
      rescued: totals.rescued,
      retried: totals.retried,
      dead: totals.dead,
      superseded: totals.superseded,
      lost: 0,
      doubled: 0,
      partial: Object.keys(whole.violations).length,
    });
    expect(whole.violations).toEqual({});
  }, 600_000);
});
