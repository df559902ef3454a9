// The steering commands as an operator runs them: JSON output, actor and reason recorded,
// bad input refused with one line and no change, and a guarded rollout that `canon tick`
// rolls back on its own when the real example pipeline's tsa handler fails.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canon, createTestDb, oneLineError, type RunResult, root, type TestDb } from './helpers.js';
import { jobType, uniq } from './steering-helpers.js';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('steercli');
});
afterAll(async () => db.end());

const env = { CANON_ACTOR: '', USER: 'opsuser' };
const run = (args: string[]) => canon(args, { url: db.url, env });
async function json(args: string[]) {
  const r = await run([...args, '--json']);
  expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout);
}

/** Everything a steering command could change, to prove a refusal changed nothing. */
async function snapshot() {
  const q = async (sql: string) => (await db.pool.query(sql)).rows;
  return {
    flags: await q(`select * from canon.flags order by name`),
    changes: await q(`select count(*)::int as n from canon.flag_changes`),
    rollouts: await q(`select * from canon.flag_rollouts order by id`),
    breakers: await q(`select * from canon.breakers order by job_type`),
    types: await q(`select name, paused, paused_by from canon.job_types order by name`),
    log: await q(`select count(*)::int as n from canon.steering_log`),
    held: await q(`select count(*)::int as n from canon.jobs where hold_reason is not null`),
  };
}

describe('canon flags', () => {
  it('changes, lists, rolls back and kills a flag, recording actor and reason', async () => {
    const flag = uniq('CLI');
    const created = await json([
      'flags',
      'create',
      flag,
      '--description',
      'a flag from the CLI',
      '--reason',
      'new feature',
    ]);
    expect(created.flag).toMatchObject({ name: flag, enabled: false, description: 'a flag from the CLI' });
    const en = await json(['flags', 'enable', flag, '--actor', 'alice', '--reason', 'go live']);
    expect(en).toMatchObject({
      actor: 'alice',
      reason: 'go live',
      flag: { enabled: true, rollout_percent: 100, strategy: 'all' },
    });
    const ro = await json(['flags', 'rollout', flag, '30', '--reason', 'canary']);
    expect(ro).toMatchObject({ actor: 'opsuser', flag: { enabled: true, rollout_percent: 30, strategy: 'gradual' } });

    const list = await json(['flags', 'list']);
    expect(list.find((f: { name: string }) => f.name === flag)).toMatchObject({ rollout_percent: 30, held_jobs: 0 });
    const hist = await json(['flags', 'history', flag]);
    expect(hist.map((h: { actor: string; source: string; reason: string }) => [h.actor, h.source, h.reason])).toEqual([
      ['opsuser', 'rollout', 'canary'],
      ['alice', 'enable', 'go live'],
      ['opsuser', 'create', 'new feature'],
    ]);

    const rb = await json(['flags', 'rollback', flag, '--reason', 'too early']);
    expect(rb).toMatchObject({ undid: hist[0].id, restored: { enabled: true, rollout_percent: 100, strategy: 'all' } });
    const get = await json(['flags', 'get', flag]);
    expect(get.recent_changes[0]).toMatchObject({ source: 'rollback', undoes: hist[0].id, reason: 'too early' });

    const type = await jobType(db.pool, uniq('cli'));
    await db.pool.query(`select canon.enqueue_job($1, 'doc-cli', $2::jsonb)`, [
      type,
      JSON.stringify({ flags: { [flag]: true } }),
    ]);
    expect(await json(['flags', 'kill', flag, '--dry-run'])).toMatchObject({ dry_run: true, would_hold_jobs: 1 });
    const kill = await json(['flags', 'kill', flag, '--reason', 'incident 42']);
    expect(kill).toMatchObject({
      held_jobs: 1,
      reason: 'incident 42',
      flag: { enabled: false, killed_by: 'opsuser', held_jobs: 1 },
    });
    expect(await json(['flags', 'release', flag, '--reason', 'checked'])).toMatchObject({
      released_jobs: 1,
      actor: 'opsuser',
    });

    const human = await run(['flags', 'history', flag]);
    expect(human.exitCode).toBe(0);
    expect(human.stdout).toMatch(/opsuser\s+kill\s+on → killed \(off\)\s+"incident 42"/);
  });

  it('refuses bad input with one line, exit 2, and changes nothing', async () => {
    const flag = uniq('BAD');
    await db.pool.query(`insert into canon.flags (name) values ($1)`, [flag]);
    const type = await jobType(db.pool, uniq('badt'));
    const cases: [string[], RegExp][] = [
      [['flags', 'enable', 'NO_SUCH_FLAG'], /^canon: unknown flag "NO_SUCH_FLAG" \(known flags: /],
      [['flags', 'rollout', flag, '150'], /percent must be from 0 to 100, got 150/],
      [['flags', 'rollout', flag, '-5'], /percent must be a whole number from 0 to 100, got "-5"/],
      [['flags', 'rollout', flag, 'abc'], /percent must be a whole number/],
      [['flags', 'rollout', flag], /give a percentage from 0 to 100, or --auto/],
      [['flags', 'rollout', flag, '30', '--step', '5'], /--step only applies with --auto/],
      [
        ['flags', 'rollout', flag, '--auto', '--guard', 'success_rate>>0.9'],
        /--guard condition "success_rate>>0.9" is malformed/,
      ],
      [['flags', 'rollout', flag, '--auto', '--guard', 'latency<3'], /unknown metric "latency"/],
      [['flags', 'rollout', flag, '--auto', '--every', 'soon'], /--every must be a duration/],
      [['flags', 'rollout', flag, '--auto', '--until', '101'], /--until must be from 1 to 100/],
      [['flags', 'rollback', flag], /has no earlier state to roll back to/],
      [['flags', 'history', 'bad name!'], /flag name "bad name!" is invalid/],
      [['flags', 'kill', 'NO_SUCH_FLAG', '--reason', 'x'], /unknown flag/],
      [['flags', 'enable', flag, '--reason', 'x'.repeat(501)], /--reason is 501 characters; at most 500/],
      [['breakers', 'open', 'no_such_type'], /unknown job type "no_such_type"/],
      [['breakers', 'open', type, '--for', 'forever'], /--for must be a duration/],
      [['breakers', 'close', 'decide'], /decision-lane type/],
      [['jobs', 'pause', 'no_such_type'], /unknown job type "no_such_type"/],
      [['jobs', 'resume', 'Bad-Type'], /job type "Bad-Type" is invalid/],
    ];
    const before = await snapshot();
    for (let i = 0; i < cases.length; i += 5) {
      const batch = cases.slice(i, i + 5);
      const results: RunResult[] = await Promise.all(batch.map(([args]) => run(args)));
      results.forEach((r, k) => {
        const [args, msg] = batch[k];
        expect(r.exitCode, args.join(' ')).toBe(2);
        expect(oneLineError(r), args.join(' ')).toMatch(msg);
        expect(r.stdout).toBe('');
      });
    }
    expect(await snapshot()).toEqual(before);
  });
});

describe('canon breakers and canon jobs pause', () => {
  it('opens, lists and closes a breaker, and pauses and resumes a type, with actor and reason', async () => {
    const type = await jobType(db.pool, uniq('brk'));
    const opened = await json(['breakers', 'open', type, '--for', '10m', '--reason', 'maintenance']);
    expect(opened).toMatchObject({
      job_type: type,
      state: 'open',
      actor: 'opsuser',
      reason: 'maintenance',
      updated_by: 'opsuser',
    });
    const list = await json(['breakers', 'list']);
    expect(list.find((b: { job_type: string }) => b.job_type === type)).toMatchObject({
      state: 'open',
      failure_count: 0,
    });
    expect(await json(['breakers', 'close', type, '--actor', 'bob'])).toMatchObject({
      state: 'closed',
      updated_by: 'bob',
    });

    const p = await json(['jobs', 'pause', type, '--reason', 'TSA outage']);
    expect(p).toMatchObject({ changed: true, paused: true, paused_by: 'opsuser', pause_reason: 'TSA outage' });
    const again = await run(['jobs', 'pause', type]);
    expect(again.stdout).toMatch(/already paused/);
    expect(await json(['jobs', 'resume', type, '--reason', 'TSA back'])).toMatchObject({
      changed: true,
      paused: false,
    });
    const log = (
      await db.pool.query(`select action, actor, reason from canon.steering_log where target = $1 order by id`, [type])
    ).rows;
    expect(log).toEqual([
      { action: 'open', actor: 'opsuser', reason: 'maintenance' },
      { action: 'closed', actor: 'bob', reason: 'closed by hand' },
      { action: 'pause', actor: 'opsuser', reason: 'TSA outage' },
      { action: 'resume', actor: 'opsuser', reason: 'TSA back' },
    ]);
  });
});

describe('guarded rollout with the real engine', () => {
  it('canon tick rolls D1_RUN_TSA_ENABLED back on its own when the tsa handler fails', async () => {
    const flag = 'D1_RUN_TSA_ENABLED';
    const pipeline = path.join(root, 'test/fixtures/steering-tsa-fails.mjs');
    await json(['flags', 'create', flag]);
    const started = await json([
      'flags',
      'rollout',
      flag,
      '--auto',
      '--step',
      '50',
      '--every',
      '1h',
      '--guard',
      'success_rate>=0.9,dead=0',
    ]);
    expect(started).toMatchObject({ from_percent: 0, to_percent: 50 });
    for (let i = 0; i < 16; i++)
      await db.pool.query(`select canon.append_event($1, 'document.created', '{"content":"hello"}')`, [`doc-tsa-${i}`]);
    const work = await json(['tick', '--pipeline', pipeline, '--max-jobs', '200', '--max-seconds', '30']);
    expect(work.work.claimed).toBeGreaterThan(0);
    const dead = (
      await db.pool.query(`select count(*)::int as n from canon.jobs where type = 'tsa' and status = 'failed'`)
    ).rows[0].n;
    expect(dead).toBeGreaterThan(0); // about half of the 16 documents were decided with the flag on

    await db.pool.query(`update canon.flag_rollouts set next_step_at = now() where flag_name = $1`, [flag]);
    const t = await json(['tick', '--max-jobs', '0']);
    expect(t.rollouts).toEqual([
      expect.objectContaining({ flag, action: 'rolled_back', from_percent: 50, to_percent: 0 }),
    ]);
    const f = await json(['flags', 'get', flag]);
    expect(f).toMatchObject({ enabled: false, rollout: null });
    expect(f.recent_changes[0]).toMatchObject({ source: 'auto-rollback', actor: 'canon-tick' });
    expect(f.recent_changes[0].reason).toMatch(/dead=\d+, needs =0/);
  });
});
