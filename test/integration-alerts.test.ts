// Steering and proof in `canon health`, `canon alerts` and /metrics, on real states: a paused
// type with queued jobs, a breaker forced open, jobs held by a kill, an automatic rollback made
// by advanceRollouts with a failing guard, and refused / trigger-bypassing edits of the ledger.
// Each alert fires on its state and clears when the state is repaired; the seed's six health
// fields keep their names; the dashboard's one-statement snapshot carries the new sections.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG, pgCode } from '../src/errors.js';
import { computeHealth } from '../src/observe/health.js';
import { DEFAULT_THRESHOLDS } from '../src/observe/thresholds.js';
import { CanonMetrics } from '../src/serve/metrics.js';
import { forceBreaker } from '../src/steering/breakers.js';
import { changeFlag, createFlag } from '../src/steering/flags.js';
import { parseGuard } from '../src/steering/guard.js';
import { setPaused } from '../src/steering/pause.js';
import { advanceRollouts, startAutoRollout } from '../src/steering/rollout.js';
import { readSnapshot } from '../src/tui/snapshot.js';
import { canon, createTestDb, root, type TestDb } from './helpers.js';
import { clearQueue, enqueue, jobType, runJobs, uniq } from './steering-helpers.js';

let db: TestDb;
let metrics: CanonMetrics;
beforeAll(async () => {
  db = await createTestDb('integration-alerts');
  metrics = new CanonMetrics(db.pool, DEFAULT_THRESHOLDS);
});
afterAll(async () => db.end());

const ops = { actor: 'ops', reason: 'test' };
const NEW_ALERTS = ['CanonFlagAutoRollback', 'CanonLedgerEditAttempts', 'CanonJobTypePaused', 'CanonBreakerOpen'];

type Alert = { name: string; firing: boolean; severity: string; summary: string; runbook: string; value: number };
async function alerts() {
  const r = await canon(['alerts', '--json'], { url: db.url });
  const d = JSON.parse(r.stdout);
  const all = d.alerts as Alert[];
  return {
    code: r.exitCode,
    firing: all.filter((a) => a.firing).map((a) => `${a.name}:${a.severity}`),
    get: (n: string) => all.find((a) => a.name === n)!,
    line: d.status_line as string,
  };
}

/** The firing alerts as computeHealth sees them in-process (the same rules, no process start). */
const firingNow = async () => (await computeHealth(db.pool)).problems.map((p) => `${p.alert}:${p.severity}`);

/** The /metrics body as canon serve renders it, one scrape. */
async function scrape(): Promise<string> {
  expect(await metrics.refresh()).toBeDefined();
  return metrics.registry.metrics();
}

describe('steering and ledger edits in health, alerts and /metrics', () => {
  it('healthy: the seed fields keep their names, the new sections are empty, none of the new alerts fires', async () => {
    const r = await canon(['health', '--json'], { url: db.url });
    expect(r.exitCode, r.stdout).toBe(0);
    const h = JSON.parse(r.stdout);
    for (const f of [
      'jobs_queued',
      'jobs_processing',
      'stuck_count',
      'dead_last_24h',
      'estimated_lag_seconds',
      'runtime_version',
    ])
      expect(h, f).toHaveProperty(f);
    expect(Object.keys(h.jobs_queued).sort()).toEqual(['by_type', 'total']);
    expect(Object.keys(h.jobs_processing).sort()).toEqual(['avg_age_seconds', 'count']);
    expect(h.steering).toEqual({
      paused_types: [],
      breakers_not_closed: [],
      held_jobs: { total: 0, by_flag: {} },
      rollouts_running: [],
      auto_rollbacks_24h: [],
    });
    expect(h.ledger_edits).toMatchObject({ severity: 'ok', refused_new: 0, bypass_new: 0 });
    const a = await alerts();
    expect(a).toMatchObject({ code: 0, firing: [] });
    for (const n of NEW_ALERTS) expect(fs.existsSync(path.join(root, a.get(n).runbook)), n).toBe(true);
    const body = await scrape();
    for (const line of [
      'canon_job_types_paused 0',
      'canon_ledger_edits_refused_new 0',
      'canon_ledger_edits_bypassed_new 0',
    ])
      expect(body).toContain(line);
    const p = await execa('promtool', ['check', 'metrics'], { input: body, reject: false }).catch(() => undefined);
    if (p) expect(p.exitCode, p.stdout + p.stderr).toBe(0);
  });

  it('pause → CanonJobTypePaused with the type and its queued count (WARNING, exit 1); resume → clears', async () => {
    const type = await jobType(db.pool, uniq('pz'));
    await setPaused(db.pool, type, true, { actor: 'alice', reason: 'TSA outage' });
    expect(await firingNow()).toEqual([]); // paused with nothing waiting: shown, not alerted
    for (let i = 0; i < 3; i++) await enqueue(db.pool, type);
    const a = await alerts();
    expect(a).toMatchObject({ code: 1, firing: ['CanonJobTypePaused:warning'] });
    expect(a.get('CanonJobTypePaused')).toMatchObject({
      value: 3,
      summary: `job type ${type} is paused with 3 queued jobs (by alice: TSA outage)`,
      runbook: 'runbooks/job-type-paused.md',
    });
    const human = await canon(['health'], { url: db.url });
    expect(human.exitCode).toBe(1);
    expect(human.stdout.split('\n')[0]).toMatch(
      new RegExp(`^CANON WARNING - job type ${type} is paused with 3 queued jobs`),
    );
    expect(human.stdout).toContain(`paused types    ${type} (3 queued, by alice: TSA outage)`);
    expect(await scrape()).toContain(`canon_job_type_paused_queued_jobs{type="${type}"} 3`);
    // the dashboard's one statement carries the same sections as canon health
    const snap = await readSnapshot(db.pool, DEFAULT_THRESHOLDS, {}, 'test');
    expect(snap.health.steering).toEqual((await computeHealth(db.pool)).steering);
    expect(snap.health.problems.map((p) => p.alert)).toEqual(['CanonJobTypePaused']);

    await setPaused(db.pool, type, false, ops);
    expect(await alerts()).toMatchObject({ code: 0, firing: [] });
    expect(await scrape()).not.toContain('canon_job_type_paused_queued_jobs{');
    await clearQueue(db.pool);
  });

  it('a breaker forced open → CanonBreakerOpen naming the type; closed → clears', async () => {
    const type = await jobType(db.pool, uniq('br'));
    await forceBreaker(db.pool, type, 'open', { actor: 'ops', reason: 'TSA maintenance' });
    const a = await alerts();
    expect(a).toMatchObject({ code: 1, firing: ['CanonBreakerOpen:warning'] });
    expect(a.get('CanonBreakerOpen').summary).toMatch(
      new RegExp(`^breaker of ${type} open until \\S+ after 0 failures: `),
    );
    const h = await computeHealth(db.pool);
    expect(h.steering.breakers_not_closed).toEqual([expect.objectContaining({ job_type: type, state: 'open' })]);
    expect(await scrape()).toContain(`canon_breaker_not_closed{job_type="${type}",state="open"} 1`);
    await forceBreaker(db.pool, type, 'closed', ops);
    expect(await alerts()).toMatchObject({ code: 0, firing: [] });
    expect(await scrape()).not.toContain('canon_breaker_not_closed{');
  });

  it('jobs held by a kill show in health and /metrics by flag', async () => {
    const flag = uniq('K');
    await createFlag(db.pool, flag, '', ops);
    await changeFlag(db.pool, flag, 'enable', ops);
    const type = await jobType(db.pool, uniq('kl'));
    await enqueue(db.pool, type, { [flag]: true });
    await changeFlag(db.pool, flag, 'kill', ops);
    expect((await computeHealth(db.pool)).steering.held_jobs).toEqual({ total: 1, by_flag: { [flag]: 1 } });
    expect(await scrape()).toContain(`canon_jobs_held{flag="${flag}"} 1`);
    await clearQueue(db.pool);
    expect((await computeHealth(db.pool)).steering.held_jobs).toEqual({ total: 0, by_flag: {} });
  });

  it('a refused UPDATE on canon.events by a non-owner login role → WARNING; a bypass → CRITICAL; canon audit attempts --ack → clears', async () => {
    const role = `canon_t_intruder_${randomBytes(4).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    await db.pool.query(`create role ${role} login password '${password}'`);
    try {
      await db.pool.query(`grant usage on schema canon to ${role}; grant select, update on canon.events to ${role}`);
      await db.pool.query(`select canon.append_event('victim-doc', 'document.created', '{"content":"x"}')`);
      await clearQueue(db.pool); // its decision job is not what this test is about
      const u = new URL(db.url);
      u.username = role;
      u.password = password;
      const intruder = new pg.Client({ connectionString: u.toString() });
      intruder.on('notice', () => {});
      await intruder.connect();
      try {
        const err = await intruder
          .query(`update canon.events set payload = '{"content":"forged"}' where entity_id = 'victim-doc'`)
          .catch((e) => e);
        expect(pgCode(err)).toBe(PG.CANON_IMMUTABLE);
      } finally {
        await intruder.end();
      }
      const a = await alerts();
      expect(a).toMatchObject({ code: 1, firing: ['CanonLedgerEditAttempts:warning'] });
      expect(a.get('CanonLedgerEditAttempts').summary).toMatch(
        new RegExp(
          `^1 refused ledger edit attempt\\(s\\); last: UPDATE by ${role} .*; acknowledge with canon audit attempts --ack$`,
        ),
      );
      expect(await scrape()).toContain('canon_ledger_edits_refused_new 1');

      // a superuser with the triggers bypassed (the statement-level register trigger still fires;
      // `where false` leaves the rows alone)
      const c = await db.pool.connect();
      try {
        await c.query(`set session_replication_role = replica`);
        c.on('notice', () => {});
        await c.query(`update canon.events set payload = payload where false`);
        await c.query(`reset session_replication_role`);
      } finally {
        c.release();
      }
      const b = await alerts();
      expect(b).toMatchObject({ code: 2, firing: ['CanonLedgerEditAttempts:critical'] });
      expect(b.get('CanonLedgerEditAttempts').value).toBe(2);
      expect((await computeHealth(db.pool)).status).toBe('CRITICAL');
      expect(await scrape()).toContain('canon_ledger_edits_bypassed_new 1');

      const ack = await canon(['audit', 'attempts', '--ack', '--actor', 'ops'], { url: db.url });
      expect(ack.exitCode, ack.stderr).toBe(0);
      expect(await alerts()).toMatchObject({ code: 0, firing: [] });
      expect((await computeHealth(db.pool)).status).toBe('OK');
      const body = await scrape();
      expect(body).toContain('canon_ledger_edits_refused_new 0');
      expect(body).toContain('canon_ledger_edits_bypassed_new 0');
    } finally {
      await db.pool.query(`drop owned by ${role}; drop role ${role}`);
    }
  });

  // last: the rollback stays in the 24-hour window for the rest of this database's life
  it('an automatic rollback by advanceRollouts with a failing guard → CanonFlagAutoRollback naming flag, from → to and the reason', async () => {
    const flag = uniq('R');
    await createFlag(db.pool, flag, '', ops);
    const type = await jobType(db.pool, uniq('ro'));
    await startAutoRollout(
      db.pool,
      flag,
      { step: 20, everySeconds: 900, until: 100, guard: parseGuard('success_rate>=0.9') },
      ops,
    );
    expect((await computeHealth(db.pool)).steering.rollouts_running).toEqual([
      expect.objectContaining({
        flag,
        current_percent: 20,
        until_percent: 100,
        step_percent: 20,
        guard: 'success_rate>=0.9',
      }),
    ]);
    for (let i = 0; i < 3; i++) await enqueue(db.pool, type, { [flag]: true });
    await runJobs(db.pool, 1, 'succeed');
    await runJobs(db.pool, 2, 'fail');
    await db.pool.query(
      `update canon.flag_rollouts set next_step_at = now() - interval '1 second' where flag_name = $1 and status = 'running'`,
      [flag],
    );
    const steps = (await advanceRollouts(db.pool)).filter((s) => s.flag === flag);
    expect(steps).toMatchObject([{ action: 'rolled_back', from_percent: 20, to_percent: 0 }]);
    await clearQueue(db.pool); // the failed jobs went back to the queue for another attempt

    const a = await alerts();
    expect(a).toMatchObject({ code: 1, firing: ['CanonFlagAutoRollback:warning'] });
    const s = a.get('CanonFlagAutoRollback').summary;
    expect(s).toContain(
      `1 automatic rollback in the last 24 h: ${flag} 20% → 0% (guard "success_rate>=0.9" failed at 20%`,
    );
    expect(s).toContain('success_rate=0.3333');
    const h = await computeHealth(db.pool);
    expect(h.steering.rollouts_running).toEqual([]);
    expect(h.steering.auto_rollbacks_24h).toEqual([expect.objectContaining({ flag, from_percent: 20, to_percent: 0 })]);
    expect(await scrape()).toContain(`canon_flag_auto_rollbacks_last_24h{flag="${flag}"} 1`);
  });
});
