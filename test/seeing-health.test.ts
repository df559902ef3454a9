// `canon health` and `canon dead-jobs` on states made by real runs: real workers for the
// counts, a worker killed with SIGKILL for stuck, poison and permanent failures for dead, a
// disabled core trigger and a deleted job for event_to_job_gap, and a database that is down.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeHealth } from '../src/observe/health.js';
import { DEFAULT_THRESHOLDS } from '../src/observe/thresholds.js';
import { canon, createEmptyDb, createTestDb, oneLineError, spawnCanon, type TestDb, waitFor } from './helpers.js';
import { doc, env, FAST, json } from './seeing-common.js';

const fastGap = { ...DEFAULT_THRESHOLDS, gap_grace_seconds: 1 };

describe('health', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb('seeing-health');
  });
  afterAll(async () => db.end());

  it('answers with exactly the seed field names, OK and exit 0 on an idle database', async () => {
    const r = await json(db, ['health']);
    expect(r.exitCode, r.stderr).toBe(0);
    const seed = [
      'jobs_queued',
      'jobs_processing',
      'stuck_count',
      'dead_last_24h',
      'estimated_lag_seconds',
      'runtime_version',
    ];
    for (const k of seed) expect(r.data).toHaveProperty(k);
    expect(Object.keys(r.data.jobs_queued).sort()).toEqual(['by_type', 'total']);
    expect(Object.keys(r.data.jobs_processing).sort()).toEqual(['avg_age_seconds', 'count']);
    expect(r.data).toMatchObject({
      jobs_queued: { by_type: {}, total: 0 },
      jobs_processing: { count: 0, avg_age_seconds: 0 },
      stuck_count: 0,
      dead_last_24h: 0,
      estimated_lag_seconds: 0,
      runtime_version: 'canon-1',
    });
    expect(r.data).toMatchObject({
      status: 'OK',
      event_to_job_gap: 0,
      core_trigger_enabled: true,
      gateway: { mode: 'compat', bypass_count: 0 },
    });
    const human = await canon(['health'], { url: db.url });
    expect(human.stdout.split('\n')[0]).toMatch(/^CANON OK - all checks pass \| queued=0 /);
  });

  it('counts queued decisions by type, flags the idle authority, and is OK again once real workers ran them', async () => {
    for (const i of [1, 2, 3]) await doc(db, `q-${i}`);
    let r = await json(db, ['health']);
    expect(r.data.jobs_queued).toEqual({ by_type: { decide: 3 }, total: 3 });
    expect(r.data.jobs_ready).toEqual({ total: 3, by_lane: { decision: 3 } });
    expect(r.data.oldest_queued_age_seconds.decide).toBeGreaterThanOrEqual(0);
    expect(r.data.estimated_lag_seconds).toBe(r.data.oldest_queued_age_seconds.decide);
    // decisions wait and no decision run started in the last hour: the seed's alert 1
    expect(r.data.status).toBe('CRITICAL');
    expect(r.exitCode).toBe(2);
    expect(r.data.problems.map((p: { alert: string }) => p.alert)).toEqual(['CanonNoAuthorityActivity']);
    const w = await canon(['work', '--once', '--pipeline', FAST], { url: db.url, env: env() });
    expect(w.exitCode, w.stderr).toBe(0);
    r = await json(db, ['health']);
    expect(r.exitCode, r.stdout).toBe(0);
    const runs = (await db.pool.query(`select status, count(*)::int as n from canon.job_runs group by 1`)).rows;
    const ok = runs.find((x) => x.status === 'succeeded')!.n;
    expect(r.data).toMatchObject({ status: 'OK', jobs_queued: { total: 0 }, stuck_count: 0, dead_last_24h: 0 });
    expect(r.data.throughput.last_1h).toMatchObject({ runs_finished: ok, succeeded: ok, failed: 0, success_rate: 1 });
    expect(r.data.throughput.last_5m.runs_finished).toBe(ok);
    expect(r.data.decision_runs_in_activity_window).toBe(
      (await db.pool.query(`select count(*)::int as n from canon.job_runs where lane = 'decision'`)).rows[0].n,
    );
  });

  it('a worker killed with SIGKILL mid-run leaves a stuck job (CRITICAL) until tick rescues it; then it is dead with ttl_exceeded', async () => {
    await doc(db, 'stuck-1', 'never returns #hang');
    const w = spawnCanon(['work', '--pipeline', FAST, '--concurrency', '1', '--log-level', 'error'], {
      url: db.url,
      env: env({ FAST_TTL: '2', FAST_ATTEMPTS: '1' }),
    });
    const job = await waitFor(
      async () =>
        (
          await db.pool.query(
            `select id from canon.jobs where entity_id = 'stuck-1' and type = 'protect' and status = 'running'`,
          )
        ).rows[0],
      { what: 'protect running' },
    );
    const live = await computeHealth(db.pool);
    expect(live.workers).toMatchObject({ alive: 1, by_role: { work: 1 } });
    w.kill('SIGKILL');
    await w;
    // not stuck while its last heartbeat is younger than the 2 s TTL (checked only if this
    // machine got here in time, so a slow CI box cannot make the test lie)
    const hb = (
      await db.pool.query(
        `select extract(epoch from now() - heartbeat_at)::float8 as age from canon.jobs where id = $1`,
        [job.id],
      )
    ).rows[0].age;
    const alive = await computeHealth(db.pool);
    if (hb < 1.5) expect(alive.stuck_count).toBe(0);
    // the killed worker's heartbeat ages: stale after worker_alive_seconds
    await waitFor(
      async () =>
        (await computeHealth(db.pool, { ...DEFAULT_THRESHOLDS, worker_alive_seconds: 1 })).workers.stale === 1,
      { what: 'the killed worker stale' },
    );
    expect((await computeHealth(db.pool, { ...DEFAULT_THRESHOLDS, worker_alive_seconds: 1 })).workers.alive).toBe(0);
    await waitFor(async () => (await computeHealth(db.pool)).stuck_count === 1, { what: 'stuck after the TTL' });
    const r = await json(db, ['health']);
    expect(r.exitCode).toBe(2);
    expect(r.data).toMatchObject({ status: 'CRITICAL', stuck_count: 1, jobs_processing: { count: 1 } });
    expect(r.data.jobs_processing.avg_age_seconds).toBeGreaterThan(2);
    expect(r.data.problems.map((p: { alert: string }) => p.alert)).toContain('CanonStuckJobs');
    expect(r.data.status_line).toMatch(/^CANON CRITICAL - 1 job running past their type's TTL/);
    const t = await canon(['tick', '--pipeline', FAST, '--max-seconds', '5'], {
      url: db.url,
      env: env({ FAST_TTL: '2', FAST_ATTEMPTS: '1' }),
    });
    expect(t.exitCode, t.stderr).toBe(0);
    const after = await json(db, ['health']);
    expect(after.data).toMatchObject({ stuck_count: 0, dead_last_24h: 1, status: 'WARNING' });
    expect(after.exitCode).toBe(1);
    const dead = await json(db, ['dead-jobs']);
    expect(dead.data.summary).toEqual({ total_dead: 1, by_type: { protect: 1 }, by_reason: { ttl_exceeded: 1 } });
    expect(dead.data.jobs[0]).toMatchObject({ id: job.id, entity_id: 'stuck-1', attempts: 1, reason: 'ttl_exceeded' });
    expect(dead.data.jobs[0].trace_id).toMatch(/^work-[0-9a-f-]{36}-\d+-1$/);
    expect(dead.exitCode).toBe(1);
  });
});

describe('dead-jobs', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb('seeing-dead');
    await doc(db, 'poison-1', 'bad #poison');
    await doc(db, 'poison-2', 'bad #poison');
    await doc(db, 'perm-1', 'nope #permanent');
    await doc(db, 'flaky-1');
    // a real worker until all four are dead (the tsa retries wait out their backoff)
    const w = spawnCanon(['work', '--pipeline', FAST, '--log-level', 'error'], {
      url: db.url,
      env: env({ FAST_ATTEMPTS: '2', CANON_EXAMPLE_FLAKY_RATE: '1' }),
    });
    await waitFor(
      async () =>
        (
          await db.pool.query(
            `select count(*) filter (where status in ('queued', 'running')) = 0 and count(*) filter (where status = 'failed' and type = 'tsa') = 1 as settled from canon.jobs`,
          )
        ).rows[0].settled,
      { what: 'the tsa job dead and nothing left to do' },
    );
    w.kill('SIGTERM');
    expect((await w).exitCode).toBe(0);
  });
  afterAll(async () => db.end());

  it('gives exact totals by type and reason even when the list is limited, with error, attempts and trace id', async () => {
    const r = await json(db, ['dead-jobs', '--limit', '1']);
    expect(r.data.summary).toEqual({
      total_dead: 4,
      by_type: { protect: 3, tsa: 1 },
      by_reason: { max_attempts_exceeded: 3, handler_error: 1 },
    });
    expect(r.data.jobs).toHaveLength(1);
    const all = await json(db, ['dead-jobs']);
    expect(all.data.jobs.map((j: { entity_id: string }) => j.entity_id).sort()).toEqual([
      'flaky-1',
      'perm-1',
      'poison-1',
      'poison-2',
    ]);
    const p = all.data.jobs.find((j: { entity_id: string }) => j.entity_id === 'poison-1');
    expect(p).toMatchObject({ type: 'protect', attempts: 2, max_attempts: 2, reason: 'max_attempts_exceeded' });
    expect(p.last_error).toBeTruthy();
    expect(p.trace_id).toMatch(/-2$/);
    const health = await json(db, ['health']);
    expect(health.data.dead_last_24h).toBe(4);
    const human = await canon(['dead-jobs', '--limit', '2'], { url: db.url });
    expect(human.stdout).toMatch(/^4 dead job\(s\) in the last 24 h/);
    expect(human.stdout).toMatch(/\(2 more; raise --limit/);
  });

  it('filters by type, reason, correlation id and time', async () => {
    expect((await json(db, ['dead-jobs', '--type', 'tsa'])).data.summary).toEqual({
      total_dead: 1,
      by_type: { tsa: 1 },
      by_reason: { max_attempts_exceeded: 1 },
    });
    expect((await json(db, ['dead-jobs', '--reason', 'handler_error'])).data.summary.total_dead).toBe(1);
    expect(
      (await json(db, ['dead-jobs', '--correlation-id', 'poison-2'])).data.jobs.map(
        (j: { id: number; entity_id: string }) => j.entity_id,
      ),
    ).toEqual(['poison-2']);
    // a 0.36 s window: the deaths above are older than that
    const none = await json(db, ['dead-jobs', '--since-hours', '0.0001']);
    expect(none.data.summary.total_dead).toBe(0);
    expect(none.exitCode).toBe(0);
    const clean = await json(db, ['dead-jobs', '--correlation-id', 'nobody']);
    expect(clean.exitCode).toBe(0);
    expect(clean.data.summary.total_dead).toBe(0);
  });

  it('refuses bad filters with one line and exit 2', async () => {
    for (const [args, msg] of [
      [['--limit', '0'], /--limit must be between 1 and 1000/],
      [['--limit', 'ten'], /--limit must be a whole number/],
      [['--since-hours', '-1'], /--since-hours must be between/],
      [
        ['--reason', 'boom'],
        /--reason must be one of ttl_exceeded, max_attempts_exceeded, handler_error, precondition_failed/,
      ],
      [['--type', 'Bad Type'], /--type "Bad Type" is not a job type name/],
      [['--type', 'nosuch'], /unknown job type "nosuch"/],
    ] as const) {
      const r = await canon(['dead-jobs', ...args], { url: db.url });
      expect(r.exitCode, r.stderr).toBe(2);
      expect(oneLineError(r)).toMatch(msg);
    }
  });
});

describe('event_to_job_gap', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb('seeing-gap');
  });
  afterAll(async () => db.end());

  it('counts an event appended while the core trigger is disabled, and clears when a decision covers it', async () => {
    await db.pool.query('alter table canon.events disable trigger canon_core_trigger');
    const t0 = Date.now();
    await doc(db, 'gap-1');
    expect((await db.pool.query(`select count(*)::int as n from canon.jobs where entity_id = 'gap-1'`)).rows[0].n).toBe(
      0,
    );
    const young = await computeHealth(db.pool, fastGap);
    if (Date.now() - t0 < 800) expect(young.event_to_job_gap).toBe(0); // within the grace period it is not a gap yet
    expect(young.core_trigger_enabled).toBe(false);
    await waitFor(async () => (await computeHealth(db.pool, fastGap)).event_to_job_gap === 1, {
      what: 'gap after the grace period',
    });
    const r = await json(db, ['health', '--threshold', 'gap_grace_seconds=1']);
    expect(r.exitCode).toBe(2);
    expect(r.data).toMatchObject({
      event_to_job_gap: 1,
      event_to_job_gap_by_lane: { decision: 1, execution: 0 },
      core_trigger_enabled: false,
    });
    expect(r.data.problems.map((p: { alert: string }) => p.alert)).toEqual([
      'CanonCoreTriggerDisabled',
      'CanonEventToJobGap',
    ]);
    // with the default 60 s grace the same event is not a gap yet
    expect((await json(db, ['health'])).data.event_to_job_gap).toBe(0);
    await db.pool.query('alter table canon.events enable trigger canon_core_trigger');
    await db.pool.query(`select * from canon.enqueue_job('decide', 'gap-1')`);
    expect((await computeHealth(db.pool, fastGap)).event_to_job_gap).toBe(0);
    const w = await canon(['work', '--once', '--pipeline', FAST], { url: db.url, env: env() });
    expect(w.exitCode, w.stderr).toBe(0);
    const after = await computeHealth(db.pool, fastGap);
    expect(after).toMatchObject({ event_to_job_gap: 0, status: 'OK' });
  });

  it('counts a required event whose execution job was deleted, until it is enqueued again through the gateway', async () => {
    await doc(db, 'gap-2');
    const d = await canon(['work', '--lanes', 'decision', '--once', '--pipeline', FAST], { url: db.url, env: env() });
    expect(d.exitCode, d.stderr).toBe(0);
    const ev = (
      await db.pool.query(
        `select position, payload from canon.events where entity_id = 'gap-2' and kind = 'job.protect.required'`,
      )
    ).rows[0];
    await db.pool.query(`delete from canon.jobs where source_event_position = $1`, [ev.position]);
    await waitFor(async () => (await computeHealth(db.pool, fastGap)).event_to_job_gap_by_lane.execution === 1, {
      what: 'execution gap',
    });
    const h = await computeHealth(db.pool, fastGap);
    expect(h.event_to_job_gap).toBe(1);
    expect(h.status).toBe('CRITICAL');
    await db.pool.query(`select * from canon.enqueue_job('protect', 'gap-2', '{}'::jsonb, $1, $2)`, [
      ev.payload.dedupe_key,
      ev.position,
    ]);
    expect((await computeHealth(db.pool, fastGap)).event_to_job_gap).toBe(0);
  });
});

describe('when the database is down or the options are bad', () => {
  const down = 'postgres://canon:secret-pw@127.0.0.1:9/canon';
  it('health is CRITICAL with one status line first and exit 2, without the password', async () => {
    const r = await canon(['health'], { url: down });
    expect(r.exitCode).toBe(2);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toMatch(/^CANON CRITICAL - database unreachable: cannot connect to Postgres/);
    expect(r.stdout + r.stderr).not.toMatch(/secret-pw/);
    const j = await canon(['health', '--json'], { url: down });
    expect(j.exitCode).toBe(2);
    expect(JSON.parse(j.stdout)).toMatchObject({ status: 'CRITICAL' });
    const a = await canon(['alerts'], { url: down });
    expect(a.exitCode).toBe(2);
    expect(a.stdout).toMatch(/^CANON CRITICAL - database unreachable/);
  });

  it('other commands say so in one line with exit 3', async () => {
    for (const args of [['dead-jobs'], ['trace', 'doc-1'], ['diagnose', 'doc-1'], ['jobs', 'retry', '1']]) {
      const r = await canon(args, { url: down });
      expect(r.exitCode, args.join(' ')).toBe(3);
      expect(oneLineError(r)).toMatch(/cannot connect to Postgres/);
    }
  });

  it('a database without canon migrations is UNKNOWN (exit 3): the check cannot run', async () => {
    const empty = await createEmptyDb('seeinghealth');
    try {
      const r = await canon(['health'], { url: empty.url });
      expect(r.exitCode).toBe(3);
      expect(r.stdout).toMatch(
        /^CANON UNKNOWN - the database is missing \d+ canon migration\(s\) .*run `canon migrate`/,
      );
    } finally {
      await empty.end();
    }
  });

  it('bad health and alerts options are UNKNOWN (exit 3), not CRITICAL', async () => {
    for (const args of [
      ['health', '--threshold', 'nope=1'],
      ['health', '--threshold', 'queued_max=-1'],
      ['alerts', '--bogus'],
      ['health', 'extra'],
    ]) {
      const r = await canon(args, { url: down });
      expect(r.exitCode, args.join(' ')).toBe(3);
      expect(r.stdout).toMatch(/^CANON UNKNOWN - /);
    }
  });
});
