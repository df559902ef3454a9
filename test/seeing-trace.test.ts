// `canon trace`, `canon diagnose` and `canon jobs retry | cancel` on real runs: a document
// through the whole example pipeline, a poison job, a killed worker, a disabled trigger, a
// deleted job, a job completed without its result event, a paused type, an open breaker, a
// frozen worker and a retry in backoff — each diagnosed with its verdict.

import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvent } from '../src/ledger.js';
import { actOnJob } from '../src/observe/actions.js';
import { bin, canon, createTestDb, oneLineError, root, spawnCanon, type TestDb, uuid, waitFor } from './helpers.js';
import { doc, env, FAST, json } from './seeing-common.js';

const G1 = ['--threshold', 'gap_grace_seconds=1'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('seeing-trace');
  await doc(db, 'ok-1');
  await doc(db, 'poison-1', 'bad #poison');
  await settle({ FAST_ATTEMPTS: '2' });
});

/** Runs a real worker until nothing is queued or running (retries wait out their backoff). */
async function settle(extra: Record<string, string> = {}) {
  const w = spawnCanon(['work', '--pipeline', FAST, '--log-level', 'error'], { url: db.url, env: env(extra) });
  await waitFor(
    async () => !(await db.pool.query(`select 1 from canon.jobs where status in ('queued', 'running')`)).rowCount,
    { what: 'the queue to drain' },
  );
  w.kill('SIGTERM');
  expect((await w).exitCode).toBe(0);
}
afterAll(async () => db.end());

type Node = {
  node: string;
  kind?: string;
  type?: string;
  lane?: string;
  status?: string;
  attempt?: number;
  children: Node[];
};
const path1 = (n: Node): string[] => [
  n.node === 'event' ? n.kind! : n.node === 'job' ? `job:${n.type}` : n.node === 'run' ? `run:${n.status}` : n.node,
  ...(n.children.length ? path1(n.children[0]) : []),
];

describe('trace', () => {
  it('shows event → decision job → run → required event → execution job → run → result event, to the end', async () => {
    const r = await json(db, ['trace', 'ok-1']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.data).toMatchObject({ query: 'ok-1', matched_by: 'entity', counts: { events: 7, dead_jobs: 0 } });
    expect(r.data.tree).toHaveLength(1);
    expect(path1(r.data.tree[0])).toEqual([
      'document.created',
      'job:decide',
      'run:succeeded',
      'job.protect.required',
      'job:protect',
      'run:succeeded',
      'protect.succeeded',
      'job:decide',
      'run:succeeded',
      'job.tsa.required',
      'job:tsa',
      'run:succeeded',
      'tsa.succeeded',
      'job:decide',
      'run:succeeded',
      'job.anchor.required',
      'job:anchor',
      'run:succeeded',
      'anchor.succeeded',
      'job:decide',
      'run:succeeded',
    ]);
    const human = await canon(['trace', 'ok-1'], { url: db.url });
    expect(human.stdout).toMatch(/^ok-1 \(entity\): 7 events, 7 jobs, 7 runs/);
    expect(human.stdout).toMatch(/└─ ● 1 document\.created/);
    expect(human.stdout).toMatch(/job #\d+ anchor \[execution\] succeeded {2}attempts 1\/\d+/);
    expect(human.stdout).toMatch(
      /run 1 succeeded \d+ms .* worker work-[0-9a-f-]{36} {2}trace work-[0-9a-f-]{36}-\d+-1/,
    );
  });

  it('shows each attempt of a dead job with its error, and finds the chain by correlation id', async () => {
    const r = await json(db, ['trace', 'poison-1']);
    expect(r.data.counts.dead_jobs).toBe(1);
    const protect = r.data.tree[0].children[0].children[0].children[0].children[0];
    expect(protect).toMatchObject({
      node: 'job',
      type: 'protect',
      status: 'failed',
      dead: true,
      reason: 'max_attempts_exceeded',
    });
    expect(protect.children.map((x: Node & { reason: string }) => [x.attempt, x.status])).toEqual([
      [1, 'failed'],
      [2, 'failed'],
    ]);
    expect(protect.children[1].children[0]).toMatchObject({ node: 'event', kind: 'protect.failed' });
    await appendEvent(db.pool, { entityId: 'other-entity', kind: 'note.added', correlationId: 'poison-1' });
    const c = await json(db, ['trace', 'poison-1']);
    expect(c.data.matched_by).toBe('entity');
    await appendEvent(db.pool, { entityId: 'corr-a', kind: 'note.added', correlationId: 'flow-9' });
    await appendEvent(db.pool, { entityId: 'corr-b', kind: 'note.added', correlationId: 'flow-9' });
    const f = await json(db, ['trace', 'flow-9']);
    expect(f.data).toMatchObject({
      matched_by: 'correlation',
      entities: ['corr-a', 'corr-b'],
      counts: { events: 2, jobs: 2 },
    });
  });

  it('refuses an unknown or malformed id with one line and exit 2', async () => {
    let r = await canon(['trace', `nobody-${uuid()}`], { url: db.url });
    expect(r.exitCode).toBe(2);
    expect(oneLineError(r)).toMatch(/no entity or correlation id "nobody-.*" in the ledger/);
    r = await canon(['trace', 'bad id'], { url: db.url });
    expect(r.exitCode).toBe(2);
    expect(oneLineError(r)).toMatch(/entity id "bad id" is invalid/);
    r = await canon(['diagnose', 'nobody'], { url: db.url });
    expect(r.exitCode).toBe(2);
    expect(oneLineError(r)).toMatch(/no entity "nobody" in the ledger/);
  });
});

describe('jobs retry and cancel', () => {
  it('retries a dead job through the gateway: a new job from a new job.<type>.required event, recorded with who and why', async () => {
    const dead = (await db.pool.query(`select id from canon.jobs where entity_id = 'poison-1' and type = 'protect'`))
      .rows[0].id;
    const r = await json(db, ['jobs', 'retry', String(dead), '-m', 'poison fixed upstream', '--actor', 'oncall-ana']);
    expect(r.exitCode, r.stderr).toBe(0);
    const res = r.data.results[0];
    expect(res).toMatchObject({ job_id: dead, action: 'retry', from_status: 'failed' });
    const job = (await db.pool.query(`select * from canon.jobs where id = $1`, [res.new_job_id])).rows[0];
    expect(job).toMatchObject({
      type: 'protect',
      entity_id: 'poison-1',
      status: 'queued',
      via_gateway: true,
      source_event_position: res.event_position,
      dedupe_key: 'poison-1:protect:2',
    });
    const ev = (
      await db.pool.query(`select kind, actor, payload from canon.events where position = $1`, [res.event_position])
    ).rows[0];
    expect(ev).toMatchObject({
      kind: 'job.protect.required',
      actor: 'oncall-ana',
      payload: { retry_of: dead, reason: 'poison fixed upstream', ordinal: 2 },
    });
    const act = (await db.pool.query(`select * from canon.job_actions where job_id = $1`, [dead])).rows[0];
    expect(act).toMatchObject({
      action: 'retry',
      actor: 'oncall-ana',
      reason: 'poison fixed upstream',
      new_job_id: res.new_job_id,
    });
    // no longer dead; the retry shows under the dead job in the trace; twice is refused
    expect((await json(db, ['dead-jobs', '--correlation-id', 'poison-1'])).data.summary.total_dead).toBe(0);
    const t = await canon(['trace', 'poison-1'], { url: db.url });
    expect(t.stdout).toMatch(
      /retry by oncall-ana at .* \("poison fixed upstream"\) → job #\d+\n.*● \d+ job\.protect\.required/,
    );
    const again = await canon(['jobs', 'retry', String(dead)], { url: db.url });
    expect(again.exitCode).toBe(2);
    expect(oneLineError(again)).toMatch(new RegExp(`job ${dead} was already retried as job ${res.new_job_id}`));
    // the decider counts the retry as outstanding: it requires nothing twice
    await settle({ FAST_ATTEMPTS: '2' });
    expect(
      (
        await db.pool.query(
          `select count(*)::int as n from canon.jobs where entity_id = 'poison-1' and type = 'protect'`,
        )
      ).rows[0].n,
    ).toBe(2);
  });

  it('two operators retrying the same dead job at once make exactly one new job', async () => {
    await doc(db, 'race-1', 'bad #poison');
    await settle({ FAST_ATTEMPTS: '1' });
    const dead = (await db.pool.query(`select id from canon.dead_jobs where entity_id = 'race-1'`)).rows[0].id;
    const results = await Promise.allSettled(
      [1, 2, 3].map((i) => actOnJob(db.pool, dead, 'retry', { actor: `op-${i}` })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((x) => x.status === 'rejected'))
      expect((r as PromiseRejectedResult).reason.message).toMatch(
        new RegExp(`job ${dead} was already retried as job \\d+`),
      );
    expect(
      (await db.pool.query(`select count(*)::int as n from canon.job_actions where job_id = $1`, [dead])).rows[0].n,
    ).toBe(1);
    expect(
      (
        await db.pool.query(
          `select count(*)::int as n from canon.events where entity_id = 'race-1' and kind = 'job.protect.required'`,
        )
      ).rows[0].n,
    ).toBe(2);
  });

  it('bulk: --dry-run changes nothing, no terminal without --yes is refused, --yes acts on exactly the matches', async () => {
    await doc(db, 'perm-1', 'nope #permanent');
    await doc(db, 'perm-2', 'nope #permanent');
    await settle({ FAST_ATTEMPTS: '2' });
    const before = (await db.pool.query(`select count(*)::int as n from canon.jobs`)).rows[0].n;
    const dry = await json(db, ['jobs', 'cancel', '--reason', 'handler_error', '--dry-run']);
    expect(dry.data).toMatchObject({ dry_run: true, matched: 2 });
    const refused = await canon(['jobs', 'cancel', '--reason', 'handler_error'], { url: db.url });
    expect(refused.exitCode).toBe(2);
    expect(oneLineError(refused)).toMatch(/cancel of 2 dead job\(s\) needs confirmation: add --yes/);
    expect(
      (await db.pool.query(`select count(*)::int as n from canon.job_actions where action = 'cancel'`)).rows[0].n,
    ).toBe(0);
    // on a terminal it asks; anything but y/yes changes nothing (script(1) gives it a pty)
    const tty = await execa('script', ['-qec', `node ${bin} jobs cancel --reason handler_error`, '/dev/null'], {
      input: 'n\n',
      env: { DATABASE_URL: db.url, NO_COLOR: '1' },
      reject: false,
    });
    expect(tty.stdout).toMatch(/cancel 2 dead job\(s\) \(\d+, \d+\)\? \[y\/N\]/);
    expect(tty.stdout).toMatch(/canon: nothing changed/);
    expect(
      (await db.pool.query(`select count(*)::int as n from canon.job_actions where action = 'cancel'`)).rows[0].n,
    ).toBe(0);
    const yes = await json(db, ['jobs', 'cancel', '--reason', 'handler_error', '--yes', '-m', 'known bad uploads']);
    expect(yes.exitCode, yes.stderr).toBe(0);
    expect(yes.data.results.map((x: { from_status: string }) => x.from_status)).toEqual(['failed', 'failed']);
    expect((await db.pool.query(`select count(*)::int as n from canon.jobs`)).rows[0].n).toBe(before);
    expect(
      (
        await db.pool.query(
          `select status, last_reason, last_error from canon.jobs where entity_id = 'perm-1' and type = 'protect'`,
        )
      ).rows[0],
    ).toMatchObject({ status: 'cancelled', last_reason: 'handler_error' });
    expect((await json(db, ['dead-jobs', '--reason', 'handler_error'])).data.summary.total_dead).toBe(0);
  });

  it('cancels a queued job, fences a running one, and refuses bad requests with one line', async () => {
    await db.pool.query(
      `insert into canon.job_types (name, lane, max_attempts, timeout_seconds) values ('seeing_slow', 'execution', 3, 600) on conflict do nothing`,
    );
    const q = (await db.pool.query(`select job_id from canon.enqueue_job('seeing_slow', 'cx-1')`)).rows[0].job_id;
    const q2 = (await db.pool.query(`select job_id from canon.enqueue_job('seeing_slow', 'cx-2')`)).rows[0].job_id;
    const worker = `execute-${uuid()}`;
    await db.pool.query(`select * from canon.claim_jobs('execution', $1, 1)`, [worker]);
    const running = (await db.pool.query(`select id from canon.jobs where status = 'running' and type = 'seeing_slow'`))
      .rows[0].id;
    const queued = running === q ? q2 : q;
    expect((await canon(['jobs', 'cancel', String(queued)], { url: db.url })).exitCode).toBe(0);
    expect((await canon(['jobs', 'cancel', String(running)], { url: db.url })).exitCode).toBe(0);
    expect(
      (await db.pool.query(`select status from canon.jobs where id = any($1) order by id`, [[q, q2]])).rows.map(
        (x) => x.status,
      ),
    ).toEqual(['cancelled', 'cancelled']);
    const run = (await db.pool.query(`select id, status, reason from canon.job_runs where job_id = $1`, [running]))
      .rows[0];
    expect(run).toMatchObject({ status: 'cancelled', reason: 'cancelled' });
    // the worker that held it comes back: its completion is refused and recorded
    const c = (
      await db.pool.query(`select ok from canon.complete_run($1, $2, '{}'::jsonb, 'seeing_slow.succeeded')`, [
        run.id,
        worker,
      ])
    ).rows[0];
    expect(c.ok).toBe(false);
    expect(
      (await db.pool.query(`select count(*)::int as n from canon.run_rejections where run_id = $1`, [run.id])).rows[0]
        .n,
    ).toBe(1);
    for (const [args, msg] of [
      [['jobs', 'retry', '999999'], /no job 999999/],
      [
        [
          'jobs',
          'retry',
          String(
            (await db.pool.query(`select id from canon.jobs where entity_id = 'ok-1' and type = 'anchor'`)).rows[0].id,
          ),
        ],
        /job \d+ is succeeded: only failed or cancelled jobs can be retried/,
      ],
      [['jobs', 'cancel', String(q)], /job \d+ is cancelled: only queued or running or failed jobs can be cancelled/],
      [['jobs', 'retry', 'abc'], /job_id must be a whole number/],
      [['jobs', 'retry', '5', '--type', 'protect'], /give either a job id or filters, not both/],
      [['jobs', 'retry', '--reason', 'nope'], /--reason must be one of/],
    ] as const) {
      const r = await canon([...args], { url: db.url });
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(oneLineError(r)).toMatch(msg);
    }
  });
});

describe('diagnose', () => {
  const verdict = async (id: string, extra: string[] = []) => {
    const r = await json(db, ['diagnose', id, ...G1, ...extra]);
    if (!r.data) throw new Error(`diagnose ${id} printed nothing: ${r.stderr}`);
    // every verdict names its evidence, a canon command to run next and a runbook that exists
    expect(r.data.evidence.length, r.data.verdict).toBeGreaterThan(0);
    expect(r.data.next[0], r.data.verdict).toMatch(/^canon /);
    expect(
      r.data.next.filter((n: string) => /psql|canon\./.test(n)),
      r.data.verdict,
    ).toEqual([]);
    expect(fs.existsSync(path.join(root, r.data.runbook)), r.data.runbook).toBe(true);
    return { code: r.exitCode, ...r.data };
  };

  it('done, and dead with the retry command next', async () => {
    expect(await verdict('ok-1')).toMatchObject({ code: 0, verdict: 'done', problem: false });
    await doc(db, 'poison-2', 'bad #poison');
    await canon(['work', '--once', '--pipeline', FAST], { url: db.url, env: env({ FAST_ATTEMPTS: '1' }) });
    const d = await verdict('poison-2');
    expect(d).toMatchObject({ code: 1, verdict: 'dead_job', runbook: 'runbooks/dead-jobs.md' });
    expect(d.next[0]).toMatch(/^canon jobs retry \d+ -m/);
    const human = await canon(['diagnose', 'poison-2'], { url: db.url });
    expect(human.stdout).toMatch(
      /^DEAD_JOB poison-2: job #\d+ protect is dead \(max_attempts_exceeded after 1\/1 attempts\)/,
    );
    expect(human.stdout).toMatch(/\nnext: canon jobs retry \d+/);
  });

  it('not enqueued: a disabled core trigger, and a deleted execution job', async () => {
    await db.pool.query('alter table canon.events disable trigger canon_core_trigger');
    try {
      await doc(db, 'nt-1');
    } finally {
      await db.pool.query('alter table canon.events enable trigger canon_core_trigger');
    }
    await sleep(1100);
    const d = await verdict('nt-1');
    expect(d).toMatchObject({ code: 1, verdict: 'not_enqueued', runbook: 'runbooks/not-enqueued.md' });
    expect(d.summary).toMatch(/document\.created \(event \d+, .*\) has no decision job/);
    await doc(db, 'nt-2');
    await canon(['work', '--lanes', 'decision', '--once', '--pipeline', FAST], { url: db.url, env: env() });
    const ev = (
      await db.pool.query(
        `select position from canon.events where entity_id = 'nt-2' and kind = 'job.protect.required'`,
      )
    ).rows[0].position;
    await db.pool.query(`delete from canon.jobs where source_event_position = $1`, [ev]);
    await sleep(1100);
    const e = await verdict('nt-2');
    expect(e).toMatchObject({ verdict: 'not_enqueued' });
    expect(e.summary).toMatch(/job\.protect\.required .* has no protect job/);
    expect(e.next[0]).toBe('canon jobs redrive nt-2');
    // the suggested fix clears it
    expect((await canon(e.next[0].split(' ').slice(1), { url: db.url })).exitCode).toBe(0);
    expect((await verdict('nt-2')).verdict).not.toBe('not_enqueued');
  });

  it('waiting on a flag the last decision read as off, and idle when a decision was cancelled', async () => {
    await doc(db, 'gate-1');
    const gate = path.join(root, 'test/fixtures/seeing-gate-pipeline.mjs');
    expect(
      (await canon(['work', '--lanes', 'decision', '--once', '--pipeline', gate], { url: db.url, env: env() }))
        .exitCode,
    ).toBe(0);
    const g = await verdict('gate-1');
    expect(g).toMatchObject({
      code: 0,
      verdict: 'waiting_on_flag',
      summary: 'idle: the last decision required nothing and read SEEING_GATE as off',
    });
    expect(g.evidence[0]).toMatch(/flags off for gate-1: .*SEEING_GATE/);
    await doc(db, 'idle-1');
    // the workers above were stopped: a queued decision has nobody to claim it, said at once
    expect(await verdict('idle-1', ['--threshold', 'gap_grace_seconds=600'])).toMatchObject({
      code: 1,
      verdict: 'no_workers',
      summary: expect.stringMatching(
        /^no live decision worker: the last one, [a-z]+-[0-9a-f-]{36}, stopped \d+s ago; job #\d+ decide waits \(ready for \d+s, within the 10m grace\)$/,
      ),
    });
    const d = (await db.pool.query(`select id from canon.jobs where entity_id = 'idle-1'`)).rows[0].id;
    expect((await canon(['jobs', 'cancel', String(d), '-m', 'not this one'], { url: db.url })).exitCode).toBe(0);
    expect(await verdict('idle-1')).toMatchObject({
      code: 0,
      verdict: 'idle',
      summary: 'no queued, running or failed work and no gap',
    });
  });

  it('executed without a result event', async () => {
    await db.pool.query(
      `insert into canon.job_types (name, lane, max_attempts, timeout_seconds) values ('seeing_quiet', 'execution', 3, 600) on conflict do nothing`,
    );
    await doc(db, 'quiet-1');
    await db.pool.query(`select * from canon.enqueue_job('seeing_quiet', 'quiet-1')`);
    const worker = `execute-${uuid()}`;
    const job = (
      await db.pool.query(
        `select id, trace_id from canon.claim_jobs('execution', $1, 10) where entity_id = 'quiet-1'`,
        [worker],
      )
    ).rows[0];
    const run = (await db.pool.query(`select id from canon.job_runs where trace_id = $1`, [job.trace_id])).rows[0].id;
    await db.pool.query(`select * from canon.complete_run($1, $2, '{"ok":true}'::jsonb, null)`, [run, worker]); // a handler path that forgot the event
    const d = await verdict('quiet-1');
    expect(d).toMatchObject({ code: 1, verdict: 'executed_no_event', runbook: 'runbooks/executed-no-event.md' });
    expect(d.summary).toMatch(/job #\d+ seeing_quiet is succeeded but the ledger has no seeing_quiet\.succeeded event/);
  });

  it('stuck (a worker killed mid-run), then retrying', async () => {
    await doc(db, 'hang-1', 'forever #hang');
    const w = spawnCanon(['work', '--pipeline', FAST, '--concurrency', '1', '--log-level', 'error'], {
      url: db.url,
      env: env({ FAST_TTL: '1', FAST_ATTEMPTS: '3' }),
    });
    await waitFor(
      async () =>
        (
          await db.pool.query(
            `select 1 from canon.jobs where entity_id = 'hang-1' and type = 'protect' and status = 'running'`,
          )
        ).rowCount,
    );
    w.kill('SIGKILL');
    await w;
    await waitFor(async () => (await verdict('hang-1')).verdict === 'stuck', { what: 'stuck verdict' });
    const d = await verdict('hang-1');
    expect(d).toMatchObject({ code: 1, verdict: 'stuck', runbook: 'runbooks/stuck-jobs.md' });
    expect(d.next[0]).toMatch(/^canon tick/);
    // rescue with a long backoff: the job waits to retry
    await db.pool.query(
      `update canon.job_types set backoff_base_seconds = 600, backoff_max_seconds = 600 where name = 'protect'`,
    );
    await db.pool.query(`select * from canon.rescue_stuck()`);
    const r = await verdict('hang-1');
    expect(r).toMatchObject({ code: 0, verdict: 'retrying' });
    expect(r.summary).toMatch(/waiting to retry at .* after: no heartbeat since/);
  });

  it('paused type, open breaker, no live workers, and a frozen worker that does not claim', async () => {
    // a database of its own: the workers killed above still look alive for a minute here
    const main = db;
    db = await createTestDb('seeing-diag-wait');
    try {
      await waitingVerdicts();
    } finally {
      await db.end();
      db = main;
    }
  });

  async function waitingVerdicts() {
    await db.pool.query(
      `insert into canon.job_types (name, lane, max_attempts, timeout_seconds) values ('seeing_wait', 'execution', 3, 600) on conflict do nothing`,
    );
    await doc(db, 'wait-1');
    await canon(['work', '--lanes', 'decision', '--once', '--pipeline', FAST], { url: db.url, env: env() });
    await db.pool.query(
      `update canon.jobs set status = 'cancelled', finished_at = now() where entity_id = 'wait-1' and status = 'queued'`,
    );
    await db.pool.query(`select * from canon.enqueue_job('seeing_wait', 'wait-1')`);
    expect(await verdict('wait-1')).toMatchObject({
      code: 1,
      verdict: 'no_workers',
      runbook: 'runbooks/enqueued-not-executed.md',
    });
    await db.pool.query(
      `update canon.job_types set paused = true, pause_reason = 'vendor outage' where name = 'seeing_wait'`,
    );
    // no live worker stays the first line; the pause follows it
    const np = await verdict('wait-1');
    expect(np).toMatchObject({ code: 1, verdict: 'no_workers' });
    expect(np.evidence).toContainEqual(
      expect.stringMatching(/^also: job #\d+ seeing_wait .*: type seeing_wait is paused \(vendor outage\)$/),
    );
    // with a live execution worker (a row that heartbeats now) the pause is the verdict
    const live = `work-${uuid()}`;
    await db.pool.query(`insert into canon.workers (id, role, lanes) values ($1, 'work', '{execution}')`, [live]);
    expect(await verdict('wait-1')).toMatchObject({
      code: 1,
      verdict: 'paused',
      runbook: 'runbooks/job-type-paused.md',
    });
    await db.pool.query(`update canon.job_types set paused = false, pause_reason = null where name = 'seeing_wait'`);
    await db.pool.query(
      `insert into canon.breakers (job_type, state, failure_count, opened_at, next_attempt_at) values ('seeing_wait', 'open', 10, now(), now() + interval '10 minutes')`,
    );
    const b = await verdict('wait-1');
    expect(b).toMatchObject({ code: 1, verdict: 'breaker_open', runbook: 'runbooks/breaker-open.md' });
    await db.pool.query(`delete from canon.breakers where job_type = 'seeing_wait'`);
    await db.pool.query(`update canon.workers set stopped_at = now() where id = $1`, [live]);
    // a real execution worker, frozen with SIGSTOP: alive by heartbeat, claiming nothing
    await db.pool.query(
      `update canon.jobs set status = 'cancelled', finished_at = now() where entity_id = 'wait-1' and type = 'seeing_wait'`,
    );
    const w = spawnCanon(['work', 'execute', '--pipeline', FAST, '--log-level', 'error'], { url: db.url, env: env() });
    try {
      await waitFor(async () => (await db.pool.query(`select 1 from canon.workers where pid = $1`, [w.pid])).rowCount);
      process.kill(w.pid!, 'SIGSTOP');
      await db.pool.query(`select * from canon.enqueue_job('protect', 'wait-1', '{}'::jsonb, 'frozen-probe')`);
      await sleep(1100);
      const f = await verdict('wait-1');
      expect(f).toMatchObject({ code: 1, verdict: 'enqueued_not_executed' });
      expect(f.summary).toMatch(/ready for \d+s while 1 execution worker\(s\) are alive/);
      process.kill(w.pid!, 'SIGCONT');
      await waitFor(
        async () =>
          !(
            await db.pool.query(
              `select 1 from canon.jobs where entity_id = 'wait-1' and type = 'protect' and status = 'queued'`,
            )
          ).rowCount,
        { what: 'the thawed worker claims' },
      );
    } finally {
      process.kill(w.pid!, 'SIGCONT');
      w.kill('SIGTERM');
      await w;
    }
    // the kill switch: a tsa job decided under D1_RUN_TSA_ENABLED is held until the flag is released
    await doc(db, 'held-1');
    for (const lanes of ['decision', 'execution', 'decision']) {
      expect(
        (await canon(['work', '--lanes', lanes, '--once', '--pipeline', FAST], { url: db.url, env: env() })).exitCode,
      ).toBe(0);
    }
    expect(
      (await canon(['flags', 'kill', 'D1_RUN_TSA_ENABLED', '--reason', 'TSA vendor outage'], { url: db.url })).exitCode,
    ).toBe(0);
    await db.pool.query(`update canon.workers set stopped_at = null, heartbeat_at = now() where id = $1`, [live]);
    const h = await verdict('held-1');
    expect(h).toMatchObject({
      code: 1,
      verdict: 'held',
      summary: expect.stringMatching(/tsa queued .*: held because flag D1_RUN_TSA_ENABLED was killed/),
    });
    expect(h.next[1]).toBe('canon flags release D1_RUN_TSA_ENABLED --reason "<why it is safe again>"');
    expect(
      (await canon(['flags', 'release', 'D1_RUN_TSA_ENABLED', '--reason', 'back'], { url: db.url })).exitCode,
    ).toBe(0);
    expect((await verdict('held-1')).verdict).not.toBe('held');
  }
});
