// event_to_job_gap's decision part is evaluated in two stages (src/sql/health.ts): one coverage
// probe per entity with events in the window, for its newest event there, and the rule itself
// only over the entities that probe finds uncovered. The number must stay exactly what the rule
// counts over every event of the window: this file keeps the rule as a single query (as health
// ran it before) and checks the snapshot against it, on a fixture with each way of covering an
// event, events outside the window on both sides, entities partly covered, positions that are
// out of seq order within an entity (two concurrent appends), and on random fixtures.

import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeHealth } from '../src/observe/health.js';
import { DEFAULT_THRESHOLDS } from '../src/observe/thresholds.js';
import { HEALTH_SQL } from '../src/sql/health.js';
import { WATCH_SQL } from '../src/sql/watch.js';
import { createTestDb, type TestDb, waitFor } from './helpers.js';

/** The rule as one statement: every non-required event of the window, checked one by one. */
const REFERENCE_GAP_DECISION = `
select count(*)::int as n from canon.events e
 where e.kind not like 'job.%.required'
   and e.created_at > now() - make_interval(secs => $1::float8)
   and e.created_at <= now() - make_interval(secs => $2::float8)
   and not exists (
     select 1 from canon.jobs d
      where d.entity_id = e.entity_id and d.lane = 'decision'
        and (d.source_event_position >= e.position
             or d.status in ('queued', 'running')
             or exists (select 1 from canon.job_runs r
                         where r.job_id = d.id
                           and case when r.detail ? 'history_seq' then (r.detail->>'history_seq')::int >= e.seq
                                    else r.started_at >= e.created_at end)))`;

interface Ev {
  position: number;
  seq: number;
  /** created_at as Postgres prints it: microseconds kept (a JS Date would drop them) */
  at: string;
}
type Status = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
/** a run of a decision job: it read the history up to historySeq, or (without it) started at startedAt */
interface Run {
  historySeq?: number;
  startedAt?: string;
}

let db: TestDb;
let runIds = 0;

async function append(entity: string, kind = 'note.added', c: pg.Pool | pg.ClientBase = db.pool): Promise<Ev> {
  return (await c.query(`select position, seq, created_at::text as at from canon.append_event($1, $2)`, [entity, kind]))
    .rows[0];
}

async function stamp(): Promise<string> {
  return (await db.pool.query(`select clock_timestamp()::text as t`)).rows[0].t;
}

/** A decision job of the entity, from `source`, left in `status`, with these runs. */
async function decision(entity: string, source: number | null, status: Status, runs: Run[] = []): Promise<number> {
  const id = Number(
    (await db.pool.query(`select job_id from canon.enqueue_job('decide', $1, '{}'::jsonb, null, $2)`, [entity, source]))
      .rows[0].job_id,
  );
  for (const [i, r] of runs.entries()) {
    const last = i === runs.length - 1;
    const runStatus =
      last && status === 'running' ? 'running' : last && status !== 'succeeded' ? 'failed' : 'succeeded';
    await db.pool.query(
      `insert into canon.job_runs (job_id, attempt, lane, type, entity_id, worker_id, trace_id, correlation_id, status,
                                   started_at, heartbeat_at, lease_expires_at, finished_at, detail)
       select $1, $2, 'decision', 'decide', $3, 'gap-test', $4, $3, $5, s, s, s + interval '1 minute',
              case when $5 = 'running' then null else s end, $6::jsonb
         from (select coalesce($7::timestamptz, clock_timestamp()) as s) t`,
      [
        id,
        i + 1,
        entity,
        `gap-test-${++runIds}`,
        runStatus,
        r.historySeq === undefined ? null : JSON.stringify({ history_seq: r.historySeq }),
        r.startedAt ?? null,
      ],
    );
  }
  if (status !== 'queued') {
    await db.pool.query(
      `update canon.jobs set status = $2, attempts = $3,
              locked_by = case when $2 = 'running' then 'gap-test' end,
              locked_at = case when $2 = 'running' then now() end,
              heartbeat_at = case when $2 = 'running' then now() end,
              finished_at = case when $2 <> 'running' then now() end
        where id = $1`,
      [id, status, runs.length],
    );
  }
  return id;
}

/**
 * Reads the snapshot's gap (the statement, computeHealth and the watch snapshot that embeds it)
 * and the reference rule in one repeatable-read transaction, so both see the same rows and the
 * same now(); the window is exactly (from, to].
 */
async function gaps(from: string, to: string) {
  const c = await db.pool.connect();
  try {
    await c.query('begin isolation level repeatable read');
    const w = (
      await c.query(
        `select extract(epoch from now() - $1::timestamptz)::float8 as lo, extract(epoch from now() - $2::timestamptz)::float8 as hi`,
        [from, to],
      )
    ).rows[0];
    const reference = (await c.query(REFERENCE_GAP_DECISION, [w.lo, w.hi])).rows[0].n as number;
    const snapshot = (await c.query(HEALTH_SQL.snapshot, [w.lo, w.hi, 60, 86400, 3600])).rows[0].gap_decision as number;
    const health = await computeHealth(c, { ...DEFAULT_THRESHOLDS, gap_window_seconds: w.lo, gap_grace_seconds: w.hi });
    const watch = (await c.query(WATCH_SQL.snapshot, [w.lo, w.hi, 60, 86400, 3600, null, null])).rows[0].snapshot.health
      .gap_decision as number;
    await c.query('commit');
    return { reference, snapshot, health: health.event_to_job_gap_by_lane.decision, watch };
  } finally {
    c.release();
  }
}

beforeAll(async () => {
  db = await createTestDb('health-gap-rule');
  // decisions are made by hand here: the core trigger would queue one per event
  await db.pool.query('alter table canon.events disable trigger canon_core_trigger');
});
afterAll(async () => db.end());

describe('gap_decision in two stages', () => {
  it('counts what the rule counts, entity by entity', async () => {
    // ── before the window ──
    const open3 = [await append('open-3')];
    await decision('open-3', open3[0].position, 'succeeded', [{ historySeq: 1 }]);
    await append('old-uncovered'); // uncovered, but older than the window
    await db.pool.query(`insert into canon.entities (id) values ('swapped')`);
    const from = await stamp();

    // ── in the window ──
    // covered by a run that read the history through the newest event (a required event after
    // it belongs to the execution gap, not to this one)
    const runSeq = [
      await append('cov-run-seq'),
      await append('cov-run-seq'),
      await append('cov-run-seq'),
      await append('cov-run-seq'),
    ];
    await decision('cov-run-seq', runSeq[0].position, 'succeeded', [{ historySeq: 4 }]);
    await append('cov-run-seq', 'job.protect.required');
    // covered by a queued decision (it will read the whole history); an older one had no run
    await append('cov-queued');
    await append('cov-queued');
    await decision('cov-queued', null, 'cancelled');
    await decision('cov-queued', null, 'queued');
    // covered by a running decision, whose run has no history_seq and started before the event
    const before = await stamp();
    await append('cov-running');
    await decision('cov-running', null, 'running', [{ startedAt: before }]);
    // covered by the source position alone (a decision that never ran)
    const src = [await append('cov-source'), await append('cov-source'), await append('cov-source')];
    await decision('cov-source', src[2].position, 'cancelled');
    // covered by a run without history_seq that started at the newest event's instant (>=)
    const st = [await append('cov-started'), await append('cov-started')];
    await decision('cov-started', null, 'succeeded', [{ startedAt: st[1].at }]);
    // a later run of a failed decision read further than its first one
    await append('cov-multi-run');
    await append('cov-multi-run');
    await append('cov-multi-run');
    await decision('cov-multi-run', null, 'failed', [{ historySeq: 1 }, { historySeq: 3 }]);
    // partly covered: the run started after seq 2 was written and before seq 3 → 2
    const part = [
      await append('partial-started'),
      await append('partial-started'),
      await append('partial-started'),
      await append('partial-started'),
    ];
    await decision('partial-started', null, 'succeeded', [{ startedAt: part[1].at }]);
    // the newest uncovered and two older ones too (seq 1, before the window, is covered) → 3
    open3.push(await append('open-3'), await append('open-3'), await append('open-3'));
    // no decision at all → 2
    await append('no-decision');
    await append('no-decision');
    // a run with history_seq is judged by it even though it started after every event → 2
    await append('history-not-time');
    await append('history-not-time');
    await append('history-not-time');
    await decision('history-not-time', null, 'succeeded', [{ historySeq: 1 }]);
    // positions out of seq order: a position is drawn before the append waits for the entity's
    // lock, so the append that waited gets the next seq with the smaller position. A decision
    // from that newest event (by seq) does not cover the older one by position → 1
    const holder = await db.pool.connect();
    const waiter = await db.pool.connect();
    let older: Ev, newer: Ev;
    try {
      const pid = (await waiter.query('select pg_backend_pid() as pid')).rows[0].pid;
      await holder.query('begin');
      await holder.query(`select 1 from canon.entities where id = 'swapped' for update`);
      const waiting = append('swapped', 'note.added', waiter);
      await waitFor(
        async () =>
          (await db.pool.query(`select wait_event_type from pg_stat_activity where pid = $1`, [pid])).rows[0]
            ?.wait_event_type === 'Lock',
        { what: 'the second append waiting for the entity lock' },
      );
      older = await append('swapped', 'note.added', holder);
      await holder.query('commit');
      newer = await waiting;
    } finally {
      holder.release();
      waiter.release();
    }
    expect(newer.seq).toBe(older.seq + 1);
    expect(newer.position).toBeLessThan(older.position);
    await decision('swapped', newer.position, 'cancelled');
    const to = await stamp();

    // ── younger than the grace period: not counted yet ──
    await append('open-3');
    await append('partial-started');
    await append('young-only');

    const g = await gaps(from, to);
    expect(g.reference).toBe(2 + 3 + 2 + 2 + 1);
    expect(g).toEqual({ reference: 10, snapshot: 10, health: 10, watch: 10 });

    // one entity at a time, so a wrong entity cannot hide behind a right total
    const expected: Record<string, number> = {
      'cov-run-seq': 0,
      'cov-queued': 0,
      'cov-running': 0,
      'cov-source': 0,
      'cov-started': 0,
      'cov-multi-run': 0,
      'partial-started': 2,
      'open-3': 3,
      'no-decision': 2,
      'history-not-time': 2,
      swapped: 1,
    };
    expect(REFERENCE_GAP_DECISION).toContain('where e.kind');
    const c = await db.pool.connect();
    try {
      await c.query('begin isolation level repeatable read');
      const w = (
        await c.query(
          `select extract(epoch from now() - $1::timestamptz)::float8 as lo, extract(epoch from now() - $2::timestamptz)::float8 as hi`,
          [from, to],
        )
      ).rows[0];
      for (const [entity, n] of Object.entries(expected)) {
        const ref = (
          await c.query(REFERENCE_GAP_DECISION.replace('where e.kind', 'where e.entity_id = $3 and e.kind'), [
            w.lo,
            w.hi,
            entity,
          ])
        ).rows[0].n;
        expect([entity, ref]).toEqual([entity, n]);
      }
      await c.query('commit');
    } finally {
      c.release();
    }

    // a queued decision covers everything: the count drops by that entity's 3
    await decision('open-3', null, 'queued');
    expect(await gaps(from, to)).toEqual({ reference: 7, snapshot: 7, health: 7, watch: 7 });
  });

  it('equals the rule on random fixtures', async () => {
    // mulberry32: the same fixture on every run
    let s = 0x5eed;
    const rnd = () => {
      s = (s + 0x6d2b79f5) | 0;
      let t = Math.imul(s ^ (s >>> 15), 1 | s);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
    const from = await stamp();
    for (let k = 0; k < 60; k++) {
      const entity = `rnd-${k}`;
      const events: Ev[] = [];
      const n = 1 + Math.floor(rnd() * 6);
      for (let i = 0; i < n; i++) {
        events.push(await append(entity, rnd() < 0.15 ? 'job.protect.required' : 'note.added'));
        if (rnd() < 0.5) continue;
        // decisions made between events, as the pipeline makes them
        const runs: Run[] = [];
        for (let r = Math.floor(rnd() * 3); r > 0; r--)
          runs.push(
            rnd() < 0.5 ? { historySeq: Math.floor(rnd() * (events.length + 1)) } : { startedAt: pick(events).at },
          );
        const source = rnd() < 0.3 ? null : pick(events).position;
        await decision(
          entity,
          source,
          pick<Status>(['succeeded', 'succeeded', 'failed', 'cancelled', 'running']),
          runs,
        );
      }
      if (rnd() < 0.05) await decision(entity, null, 'queued');
    }
    const to = await stamp();
    const g = await gaps(from, to);
    expect(g.reference).toBeGreaterThan(10); // the fixture leaves real gaps, and covered entities
    expect(g.reference).toBeLessThan(
      (
        await db.pool.query(
          `select count(*)::int as n from canon.events where entity_id like 'rnd-%' and kind not like 'job.%.required'`,
        )
      ).rows[0].n,
    );
    expect(g).toEqual({ reference: g.reference, snapshot: g.reference, health: g.reference, watch: g.reference });
  });
});
