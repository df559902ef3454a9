// The engine with real processes on a real Postgres: the example pipeline end to end, crash
// safety under SIGKILL, the lease fence under SIGSTOP, poison/hang/permanent failures,
// lane purity with split workers, overlapping ticks, and bad pipeline modules.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvent } from '../src/ledger.js';
import { canon, createTestDb, oneLineError, root, spawnCanon, type TestDb, waitFor } from './helpers.js';

const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-tsa-'));
const FAST = path.join(root, 'test/fixtures/fast-pipeline.mjs');
const env = (extra: Record<string, string> = {}) => ({ CANON_TSA_KEY_DIR: keyDir, ...extra });

async function newDocs(
  db: TestDb,
  n: number,
  prefix: string,
  content = (i: number) => `document ${prefix} ${i}`,
): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  for (const [i, id] of ids.entries())
    await appendEvent(db.pool, { entityId: id, kind: 'document.created', payload: { content: content(i) } });
  return ids;
}

/** Runs a real worker process until the condition holds, then stops it with SIGTERM. */
async function workUntil(
  db: TestDb,
  args: string[],
  envv: Record<string, string>,
  cond: () => Promise<boolean>,
  timeout = 60_000,
) {
  const w = spawnCanon(['work', ...args], { url: db.url, env: envv });
  try {
    await waitFor(async () => (await cond()) || (w.exitCode !== null && w.exitCode !== undefined), {
      timeout,
      what: 'worker condition',
    });
  } finally {
    w.kill('SIGTERM');
  }
  const r = await w;
  return { exitCode: r.exitCode ?? -1, stderr: String(r.stderr) };
}

const jobFinished = (db: TestDb, entity: string, type: string) => async () =>
  (
    await db.pool.query(
      `select 1 from canon.jobs where entity_id = $1 and type = $2 and status in ('succeeded', 'failed')`,
      [entity, type],
    )
  ).rowCount! > 0;

async function kinds(db: TestDb, id: string): Promise<string[]> {
  return (await db.pool.query('select kind from canon.events where entity_id = $1 order by seq', [id])).rows.map(
    (r) => r.kind,
  );
}

/** Every execution job has at most one result event, and succeeded jobs exactly one. */
async function resultEventsPerJob(db: TestDb) {
  return (
    await db.pool.query(`
      select j.id, j.status, count(e.position)::int as results
        from canon.jobs j
        left join canon.events e on e.entity_id = j.entity_id and e.kind in (j.type || '.succeeded', j.type || '.failed')
                                 and (e.payload->>'job_id')::bigint = j.id
       where j.lane = 'execution' group by j.id, j.status`)
  ).rows as { id: number; status: string; results: number }[];
}

describe('example pipeline', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb('engine-smoke');
  });
  afterAll(async () => db.end());

  it('runs protect → tsa → anchor with the flag on, with split decide/execute workers that each claim only their lane', async () => {
    const ids = await newDocs(db, 20, 'on');
    const decide = spawnCanon(['work', 'decide', '--concurrency', '4'], { url: db.url, env: env() });
    const exec = spawnCanon(['work', 'execute', '--concurrency', '4'], { url: db.url, env: env() });
    await waitFor(
      async () =>
        (
          await db.pool.query(
            `select count(*)::int as n from canon.events where kind = 'anchor.succeeded' and entity_id like 'on-%'`,
          )
        ).rows[0].n === ids.length,
      { timeout: 60_000, what: 'all anchored' },
    );
    decide.kill('SIGTERM');
    exec.kill('SIGTERM');
    const [d, x] = await Promise.all([decide, exec]);
    expect(d.exitCode).toBe(0);
    expect(x.exitCode).toBe(0);
    expect(await kinds(db, ids[0])).toEqual([
      'document.created',
      'job.protect.required',
      'protect.succeeded',
      'job.tsa.required',
      'tsa.succeeded',
      'job.anchor.required',
      'anchor.succeeded',
    ]);
    const lanes = (
      await db.pool.query(
        `select split_part(worker_id, '-', 1) as role, lane, count(*)::int as n from canon.job_runs group by 1, 2`,
      )
    ).rows;
    expect(lanes.filter((r) => r.role === 'decide').every((r) => r.lane === 'decision')).toBe(true);
    expect(lanes.filter((r) => r.role === 'execute').every((r) => r.lane === 'execution')).toBe(true);
    // the verifier accepts what the pipeline produced
    const v = await canon(['anchor', 'verify', ids[3]], { url: db.url, env: env() });
    expect(v.exitCode, v.stdout + v.stderr).toBe(0);
    // graceful stop marks the workers stopped
    const alive = (await db.pool.query(`select count(*)::int as n from canon.workers where stopped_at is null`)).rows[0]
      .n;
    expect(alive).toBe(0);
  });

  it('goes straight to anchor when D1_RUN_TSA_ENABLED is off (legacy mode)', async () => {
    await db.pool.query(
      `insert into canon.flags (name, enabled) values ('D1_RUN_TSA_ENABLED', false) on conflict (name) do update set enabled = false`,
    );
    const ids = await newDocs(db, 5, 'off');
    const r = await canon(['work', '--once'], { url: db.url, env: env() });
    expect(r.exitCode, r.stderr).toBe(0);
    for (const id of ids)
      expect(await kinds(db, id)).toEqual([
        'document.created',
        'job.protect.required',
        'protect.succeeded',
        'job.anchor.required',
        'anchor.succeeded',
      ]);
    // the decision recorded the flag value it used
    const req = (
      await db.pool.query(`select payload from canon.events where entity_id = $1 and kind = 'job.anchor.required'`, [
        ids[0],
      ])
    ).rows[0];
    expect(req.payload.flags).toEqual({ D1_RUN_TSA_ENABLED: false });
    // and trace shows the flag values each decision used
    const tr = await canon(['trace', ids[0]], { url: db.url, env: env() });
    expect(tr.stdout).toContain('decided: required anchor; flags D1_RUN_TSA_ENABLED=off');
    await db.pool.query(`update canon.flags set enabled = true where name = 'D1_RUN_TSA_ENABLED'`);
  });

  it('adds nothing when a decision is re-run on the same history', async () => {
    const [id] = await newDocs(db, 1, 'redecide');
    await canon(['work', '--once'], { url: db.url, env: env() });
    const before = await kinds(db, id);
    // a new, unrelated event asks for another decision on the finished history
    await appendEvent(db.pool, { entityId: id, kind: 'document.viewed' });
    await canon(['work', '--once'], { url: db.url, env: env() });
    expect(await kinds(db, id)).toEqual([...before, 'document.viewed']);
  });

  it('anchor verify fails for a tampered hash, signature or proof', async () => {
    const [id] = await newDocs(db, 1, 'tamper');
    await canon(['work', '--once'], { url: db.url, env: env() });
    expect((await canon(['anchor', 'verify', id], { url: db.url, env: env() })).exitCode).toBe(0);
    const tamper = async (kind: string, jsonPath: string, value: string) => {
      const c = await db.pool.connect();
      try {
        await c.query(`set session_replication_role = replica`);
        await c.query(
          `update canon.events set payload = jsonb_set(payload, $3::text[], to_jsonb($4::text)) where entity_id = $1 and kind = $2`,
          [id, kind, `{${jsonPath}}`, value],
        );
        await c.query(`set session_replication_role = origin`);
      } finally {
        c.release();
      }
    };
    const orig = (await db.pool.query(`select kind, payload from canon.events where entity_id = $1`, [id])).rows;
    const get = (k: string) => orig.find((r) => r.kind === k)!.payload.result;
    const cases: [string, string, string, string][] = [
      ['protect.succeeded', 'result,sha256', '0'.repeat(64), 'content_hash'],
      ['tsa.succeeded', 'result,signature', Buffer.alloc(64, 1).toString('base64'), 'timestamp_signature'],
      ['anchor.succeeded', 'result,root', 'f'.repeat(64), 'inclusion_proof'],
    ];
    for (const [kind, p, value, failing] of cases) {
      await tamper(kind, p, value);
      const r = await canon(['anchor', 'verify', id, '--json'], { url: db.url, env: env() });
      expect(r.exitCode).toBe(1);
      expect(JSON.parse(r.stdout).checks.find((c: { name: string }) => c.name === failing).ok).toBe(false);
      const [k, f] = p.split(',');
      await tamper(kind, p, get(kind)[f]); // restore
      void k;
    }
    expect((await canon(['anchor', 'verify', id], { url: db.url, env: env() })).exitCode).toBe(0);
  });
});

describe('failures', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb('engine-failures');
  });
  afterAll(async () => db.end());

  it('retries a poison job exactly max_attempts times with backoff, then it is dead with one .failed event', async () => {
    const [id] = await newDocs(db, 1, 'poison', () => 'bad #poison');
    const r = await workUntil(db, ['--pipeline', FAST], env({ FAST_ATTEMPTS: '3' }), jobFinished(db, id, 'protect'));
    expect(r.exitCode, r.stderr).toBe(0);
    const job = (await db.pool.query(`select * from canon.jobs where entity_id = $1 and type = 'protect'`, [id]))
      .rows[0];
    expect(job.status).toBe('failed');
    expect(job.attempts).toBe(3);
    expect(job.last_reason).toBe('max_attempts_exceeded');
    const runs = (
      await db.pool.query(
        `select started_at, finished_at, reason from canon.job_runs where job_id = $1 order by attempt`,
        [job.id],
      )
    ).rows;
    expect(runs.length).toBe(3);
    for (let i = 1; i < runs.length; i++)
      expect(runs[i].started_at.getTime() - runs[i - 1].finished_at.getTime()).toBeGreaterThanOrEqual(45); // backoff ≥ half of 0.1 s
    expect((await kinds(db, id)).filter((k) => k.endsWith('.failed'))).toEqual(['protect.failed']);
    const failed = (
      await db.pool.query(`select payload from canon.events where entity_id = $1 and kind = 'protect.failed'`, [id])
    ).rows[0].payload;
    expect(failed.reason).toBe('max_attempts_exceeded');
  });

  it('aborts a hanging handler at its timeout, and buries a permanent failure at once', async () => {
    const [hang] = await newDocs(db, 1, 'hang', () => 'stuck #hang');
    const [perm] = await newDocs(db, 1, 'perm', () => 'nope #permanent');
    const r = await workUntil(
      db,
      ['--pipeline', FAST],
      env({ FAST_ATTEMPTS: '2', FAST_TTL: '1' }),
      async () => (await jobFinished(db, hang, 'protect')()) && (await jobFinished(db, perm, 'protect')()),
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const hangRuns = (
      await db.pool.query(
        `select r.reason, r.error from canon.job_runs r join canon.jobs j on j.id = r.job_id where j.entity_id = $1 and j.type = 'protect' order by r.attempt`,
        [hang],
      )
    ).rows;
    expect(hangRuns.map((x) => x.reason)).toEqual(['timeout', 'timeout']);
    const permJob = (
      await db.pool.query(
        `select status, attempts, last_reason from canon.jobs where entity_id = $1 and type = 'protect'`,
        [perm],
      )
    ).rows[0];
    expect(permJob).toEqual({ status: 'failed', attempts: 1, last_reason: 'handler_error' });
    expect((await kinds(db, perm)).filter((k) => k.endsWith('.failed'))).toEqual(['protect.failed']);
  });

  it('a worker paused past its lease (SIGSTOP, rescue, SIGCONT) cannot complete the job', async () => {
    const [id] = await newDocs(db, 1, 'paused');
    // a slow protect (1.5 s) with a 3 s TTL: only a frozen worker misses its heartbeat
    const penv = env({ FAST_TTL: '3', SLOW_PROTECT_MS: '1500' });
    const w = spawnCanon(['work', '--pipeline', FAST, '--concurrency', '1'], { url: db.url, env: penv });
    const run = await waitFor(
      async () =>
        (
          await db.pool.query(
            `select r.id, r.worker_id from canon.job_runs r where r.entity_id = $1 and r.type = 'protect' and r.status = 'running'`,
            [id],
          )
        ).rows[0],
      { what: 'protect running' },
    );
    process.kill(w.pid!, 'SIGSTOP');
    await new Promise((r) => setTimeout(r, 4000));
    const t = await canon(['tick', '--max-jobs', '0', '--json', '--pipeline', FAST], { url: db.url, env: penv });
    expect(JSON.parse(t.stdout).rescued.total).toBe(1);
    process.kill(w.pid!, 'SIGCONT');
    const rejection = await waitFor(
      async () => (await db.pool.query(`select action from canon.run_rejections where run_id = $1`, [run.id])).rows[0],
      { what: 'late completion rejected' },
    );
    expect(['complete', 'fail']).toContain(rejection.action);
    const r = (await db.pool.query(`select status, reason from canon.job_runs where id = $1`, [run.id])).rows[0];
    expect(r).toEqual({ status: 'failed', reason: 'ttl_exceeded' });
    await waitFor(async () => (await kinds(db, id)).includes('anchor.succeeded'), {
      timeout: 30_000,
      what: 'finished after rescue',
    });
    w.kill('SIGTERM');
    await w;
    expect((await kinds(db, id)).filter((k) => k === 'protect.succeeded').length).toBe(1);
  });
});

describe('crash safety', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb('engine-crash');
  });
  afterAll(async () => db.end());

  it('loses and doubles nothing while worker processes are SIGKILLed repeatedly', async () => {
    await db.pool.query(
      `update canon.job_types set timeout_seconds = 2, backoff_base_seconds = 0.1, backoff_max_seconds = 0.5 where name = 'decide'`,
    );
    const N = 500;
    await newDocs(db, N, 'crash');
    const penv = env({ FAST_TTL: '2', FAST_ATTEMPTS: '10' });
    const start = () =>
      spawnCanon(['work', '--pipeline', FAST, '--concurrency', '8', '--log-level', 'error'], {
        url: db.url,
        env: penv,
      });
    let workers = [start(), start(), start()];
    const killedPids: number[] = [];
    const done = async () =>
      (
        await db.pool.query(
          `select count(*)::int as n from canon.events where kind = 'anchor.succeeded' and entity_id like 'crash-%'`,
        )
      ).rows[0].n;
    let kills = 0;
    // at least three kills while work is left (the pipeline may pass 80 % within two), at most 12
    for (let d = await done(); d < N && (kills < 3 || d < N * 0.8) && kills < 12; d = await done()) {
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 300));
      const victim = workers[Math.floor(Math.random() * workers.length)];
      victim.kill('SIGKILL');
      killedPids.push(victim.pid!);
      await victim;
      kills++;
      workers = workers.filter((w) => w !== victim).concat(start());
      // the rescuer: what cron would run
      await canon(['tick', '--max-jobs', '0', '--pipeline', FAST], { url: db.url, env: penv });
    }
    expect(kills).toBeGreaterThanOrEqual(3);
    await waitFor(
      async () => {
        await canon(['tick', '--max-jobs', '0', '--pipeline', FAST], { url: db.url, env: penv });
        // and a late kill's runs (the last decisions) rescued by the tick after their TTL
        const running = await db.pool.query(
          `select count(*)::int as n from canon.job_runs where status = 'running' and worker_id in
             (select id from canon.workers where pid = any($1))`,
          [killedPids],
        );
        return (await done()) === N && running.rows[0].n === 0;
      },
      { timeout: 120_000, interval: 1000, what: 'all entities anchored after the kills' },
    ).catch(async (e) => {
      const state = (
        await db.pool.query(
          `select lane, type, status, count(*)::int as n, min(run_at) as next_run from canon.jobs group by 1, 2, 3 order by 1, 2, 3`,
        )
      ).rows;
      const alive = (await db.pool.query(`select id, heartbeat_at, stopped_at from canon.workers`)).rows;
      throw new Error(
        `${e.message}: done ${await done()}/${N}; jobs ${JSON.stringify(state)}; workers ${JSON.stringify(alive)}`,
      );
    });
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(workers);

    // every job has exactly one result event
    const perJob = await resultEventsPerJob(db);
    expect(perJob.filter((j) => j.status === 'succeeded' && j.results !== 1)).toEqual([]);
    expect(perJob.filter((j) => j.results > 1)).toEqual([]);
    expect(perJob.filter((j) => j.status !== 'succeeded')).toEqual([]);
    // the seed guide's duplicate-events query returns no rows
    const dup = await db.pool.query(
      `SELECT entity_id, kind, COUNT(*) as event_count FROM events WHERE created_at > NOW() - INTERVAL '1 day' GROUP BY entity_id, kind HAVING COUNT(*) > 1`,
    );
    expect(dup.rows).toEqual([]);
    // the killed workers' unfinished runs were rescued as ttl_exceeded
    const killed = (await db.pool.query(`select id from canon.workers where pid = any($1)`, [killedPids])).rows.map(
      (r) => r.id,
    );
    const runs = (
      await db.pool.query(
        `select status, reason, lane, error from canon.job_runs where worker_id = any($1) and status <> 'succeeded'`,
        [killed],
      )
    ).rows;
    expect(runs.length).toBeGreaterThan(0);
    expect(runs.filter((r) => !(r.status === 'failed' && r.reason === 'ttl_exceeded'))).toEqual([]);
    expect(
      (await db.pool.query(`select count(*)::int as n from canon.job_runs where status = 'running'`)).rows[0].n,
    ).toBe(0);
  }, 240_000);
});

describe('tick', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb('engine-tick');
  });
  afterAll(async () => db.end());

  it('two overlapping ticks never process the same job twice', async () => {
    await newDocs(db, 60, 'tick');
    const [a, b] = await Promise.all([
      canon(['tick', '--json', '--max-jobs', '10000', '--max-seconds', '30'], { url: db.url, env: env() }),
      canon(['tick', '--json', '--max-jobs', '10000', '--max-seconds', '30'], { url: db.url, env: env() }),
    ]);
    expect(a.exitCode, a.stderr).toBe(0);
    expect(b.exitCode, b.stderr).toBe(0);
    const ra = JSON.parse(a.stdout);
    const rb = JSON.parse(b.stdout);
    expect([ra.skipped, rb.skipped].filter(Boolean).length).toBeGreaterThanOrEqual(1);
    const twice = (
      await db.pool.query(
        `select job_id, count(distinct worker_id)::int as n from canon.job_runs group by job_id having count(distinct worker_id) > 1`,
      )
    ).rows;
    expect(twice).toEqual([]);
    const total = ra.work.claimed + rb.work.claimed;
    expect(total).toBe((await db.pool.query(`select count(*)::int as n from canon.job_runs`)).rows[0].n);
  });

  it('prints a one-line summary and exits 0', async () => {
    const r = await canon(['tick', '--max-jobs', '5'], { url: db.url, env: env() });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toMatch(/^tick: rescued \d+/);
  });
});

describe('bad pipeline modules', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb('engine-badmod');
  });
  afterAll(async () => db.end());

  it.each([
    ['bad-missing-handler.mjs', /handlers\.protect: job type "protect" has no handler/],
    ['bad-field-type.mjs', /jobTypes\.protect\.maxAttempts: /],
    ['bad-throws.mjs', /failed to load: boom at import/],
    ['no-such-file.mjs', /file not found/],
  ])('%s gets one line naming the file and the field', async (file, pattern) => {
    const r = await canon(['work', '--once', '--pipeline', path.join('test/fixtures', file)], { url: db.url });
    expect(r.exitCode).toBe(2);
    const line = oneLineError(r);
    expect(line).toContain(file);
    expect(line).toMatch(pattern);
  });

  it('a handler returning a non-serialisable value kills the job with a clear error, and an invalid decision fails the decision run', async () => {
    const [id] = await newDocs(db, 1, 'bigint');
    const [g] = await newDocs(db, 1, 'garbage', () => '#garbage');
    const r = await workUntil(
      db,
      ['--pipeline', 'test/fixtures/bad-result.mjs'],
      {},
      async () =>
        (await jobFinished(db, id, 'protect')()) &&
        (
          await db.pool.query(
            `select 1 from canon.job_runs where entity_id = $1 and lane = 'decision' and status = 'failed'`,
            [g],
          )
        ).rowCount! > 0,
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const job = (
      await db.pool.query(`select status, last_error from canon.jobs where entity_id = $1 and type = 'protect'`, [id])
    ).rows[0];
    expect(job.status).toBe('failed');
    expect(job.last_error).toMatch(/not JSON-serialisable/);
    const dec = (
      await db.pool.query(
        `select r.error from canon.job_runs r where r.entity_id = $1 and r.lane = 'decision' order by id limit 1`,
        [g],
      )
    ).rows[0];
    expect(dec.error).toMatch(/invalid decision at required/);
  });
});

describe('graceful shutdown', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb('engine-release');
  });
  afterAll(async () => db.end());

  it('hands in-flight jobs back on SIGTERM without spending their attempt, and another worker finishes them', async () => {
    const [id] = await newDocs(db, 1, 'release');
    const penv = env({ FAST_TTL: '10', SLOW_PROTECT_MS: '3000' });
    const w = spawnCanon(['work', '--pipeline', FAST, '--grace', '0'], { url: db.url, env: penv });
    await waitFor(
      async () =>
        (
          await db.pool.query(
            `select 1 from canon.job_runs where entity_id = $1 and type = 'protect' and status = 'running'`,
            [id],
          )
        ).rowCount! > 0,
      { what: 'protect running' },
    );
    w.kill('SIGTERM');
    expect((await w).exitCode).toBe(0);
    const job = (
      await db.pool.query(
        `select status, attempts, max_attempts from canon.jobs where entity_id = $1 and type = 'protect'`,
        [id],
      )
    ).rows[0];
    expect(job.status).toBe('queued');
    expect(job.max_attempts - job.attempts).toBe(3); // the released attempt is given back
    const r = await workUntil(db, ['--pipeline', FAST], penv, async () =>
      (await kinds(db, id)).includes('anchor.succeeded'),
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const runs = (
      await db.pool.query(
        `select attempt, status, reason from canon.job_runs where entity_id = $1 and type = 'protect' order by attempt`,
        [id],
      )
    ).rows;
    expect(runs).toEqual([
      { attempt: 1, status: 'cancelled', reason: 'released' },
      { attempt: 2, status: 'succeeded', reason: null },
    ]);
  });
});

describe('operator retry', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb('engine-retry');
  });
  afterAll(async () => db.end());

  it('a dead step retried by an operator puts the document back on its way to anchor', async () => {
    const [id] = await newDocs(db, 1, 'outage');
    const flag = path.join(keyDir, `outage-${Date.now()}`);
    fs.writeFileSync(flag, '');
    const penv = env({ FAIL_WHILE_FILE: flag });
    await workUntil(db, ['--pipeline', FAST], penv, jobFinished(db, id, 'protect'));
    const dead = (
      await db.pool.query(`select id, status from canon.jobs where entity_id = $1 and type = 'protect'`, [id])
    ).rows[0];
    expect(dead.status).toBe('failed');
    fs.rmSync(flag);
    const r = await canon(['jobs', 'retry', String(dead.id), '--yes', '-m', 'outage over'], { url: db.url, env: penv });
    expect(r.exitCode, r.stderr).toBe(0);
    await workUntil(db, ['--pipeline', FAST], penv, async () => (await kinds(db, id)).includes('anchor.succeeded'));
    expect(await kinds(db, id)).toEqual([
      'document.created',
      'job.protect.required',
      'protect.failed',
      'job.protect.required',
      'protect.succeeded',
      'job.tsa.required',
      'tsa.succeeded',
      'job.anchor.required',
      'anchor.succeeded',
    ]);
  });
});

describe('--once', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb('engine-once');
  });
  afterAll(async () => db.end());

  it('exits when what is left waits on an operator (a paused type)', async () => {
    await newDocs(db, 2, 'once');
    await db.pool.query(
      `insert into canon.job_types (name, lane) values ('protect', 'execution') on conflict do nothing`,
    );
    await db.pool.query(`update canon.job_types set paused = true where name = 'protect'`);
    const r = await canon(['work', '--once'], { url: db.url, env: env(), timeout: 30_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const queued = (
      await db.pool.query(`select count(*)::int as n from canon.jobs where type = 'protect' and status = 'queued'`)
    ).rows[0].n;
    expect(queued).toBe(2);
  });
});
