// `canon diagnose` at once and `canon jobs redrive`: with the health KPI's grace left at its
// default (60 s), a document appended while the core trigger is off is NOT_ENQUEUED at the
// first look, work in a lane no live worker serves is NO_WORKERS at the first look, and the
// next step diagnose names (`canon gateway trigger on`, `canon jobs redrive <id>`) is a canon
// command that fixes it through the gateway, recorded as a job action.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redrive } from '../src/observe/redrive.js';
import { canon, createTestDb, oneLineError, spawnCanon, type TestDb, uuid, waitFor } from './helpers.js';
import { doc, env, FAST, json, workOnce } from './seeing-common.js';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('seeing-diagnose');
});
afterAll(async () => db.end());

const count = async (sql: string, params: unknown[] = []) => (await db.pool.query(sql, params)).rows[0].n as number;
const diagnose = async (id: string) => {
  const r = await json(db, ['diagnose', id]);
  if (!r.data) throw new Error(`diagnose ${id} printed nothing: ${r.stderr}`);
  expect(r.data.evidence.length, r.data.verdict).toBeGreaterThan(0);
  expect(r.data.next[0], r.data.verdict).toMatch(/^canon /);
  return { code: r.exitCode, ...r.data };
};
const withTriggerOff = async (fn: () => Promise<unknown>) => {
  await db.pool.query('alter table canon.events disable trigger canon_core_trigger');
  try {
    await fn();
  } finally {
    await db.pool.query('alter table canon.events enable trigger canon_core_trigger');
  }
};

describe('diagnose reports what is wrong at once', () => {
  it('trigger off: NOT_ENQUEUED at the first look, the trigger named, canon commands next; redrive fixes it through the gateway', async () => {
    await db.pool.query('alter table canon.events disable trigger canon_core_trigger');
    try {
      await doc(db, 'off-1');
      const d = await diagnose('off-1');
      expect(d).toMatchObject({
        code: 1,
        verdict: 'not_enqueued',
        problem: true,
        runbook: 'runbooks/not-enqueued.md',
        core_trigger_enabled: false,
        grace_seconds: 60,
      });
      expect(d.summary).toMatch(
        /^document\.created \(event \d+, \d+s old, within the 60s grace; health counts it in event_to_job_gap after that\) has no decision job: the core trigger canon_core_trigger is DISABLED$/,
      );
      expect(d.evidence).toContain('core trigger canon_core_trigger: DISABLED');
      expect(d.next.slice(0, 2)).toEqual(['canon gateway trigger on', 'canon jobs redrive off-1']);
      expect(d.next.some((n: string) => n.includes('psql'))).toBe(false);
      const human = await canon(['diagnose', 'off-1'], { url: db.url });
      expect(human.stdout).toMatch(/^NOT_ENQUEUED off-1: document\.created .* DISABLED\n/);
      expect(human.stdout).toMatch(/\nnext: canon gateway trigger on\n {6}canon jobs redrive off-1\n/);
      expect(human.stdout).toMatch(/\nrunbook: runbooks\/not-enqueued\.md$/m);

      // the first next step: the trigger back on (by its owner, the test's role)
      const off = await json(db, ['gateway', 'trigger']);
      expect(off).toMatchObject({ exitCode: 1, data: { core_trigger_enabled: false, changed: false } });
      const on = await json(db, ['gateway', 'trigger', 'on']);
      expect(on).toMatchObject({ exitCode: 0, data: { core_trigger_enabled: true, changed: true } });
    } finally {
      await db.pool.query('alter table canon.events enable trigger canon_core_trigger');
    }
    // still not enqueued: the trigger was off when the event came; the next step is the redrive
    const d = await diagnose('off-1');
    expect(d).toMatchObject({ verdict: 'not_enqueued', core_trigger_enabled: true });
    expect(d.summary).toMatch(/has no decision job: the core trigger is enabled now, so it was off when/);
    expect(d.next[0]).toBe('canon jobs redrive off-1');

    const jobsBefore = await count(`select count(*)::int as n from canon.jobs`);
    const dry = await json(db, ['jobs', 'redrive', 'off-1', '--dry-run']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.data).toMatchObject({
      entity_id: 'off-1',
      dry_run: true,
      jobs: [{ lane: 'decision', type: 'decide', source_kind: 'document.created', dedupe_key: null }],
    });
    expect(dry.data.jobs[0].job_id).toBeUndefined();
    expect((await canon(['jobs', 'redrive', 'off-1', '--dry-run'], { url: db.url })).stdout).toMatch(
      /^would enqueue decide \[decision\] for event \d+ document\.created$/,
    );
    expect(await count(`select count(*)::int as n from canon.jobs`)).toBe(jobsBefore);
    expect(await count(`select count(*)::int as n from canon.job_actions`)).toBe(0);

    const r = await json(db, ['jobs', 'redrive', 'off-1', '-m', 'trigger was off', '--actor', 'oncall-ana']);
    expect(r.exitCode, r.stderr).toBe(0);
    const made = r.data.jobs[0];
    expect(made).toMatchObject({ lane: 'decision', type: 'decide', created: true });
    const job = (await db.pool.query(`select * from canon.jobs where id = $1`, [made.job_id])).rows[0];
    expect(job).toMatchObject({
      entity_id: 'off-1',
      lane: 'decision',
      status: 'queued',
      via_gateway: true,
      source_event_position: made.source_event_position,
    });
    const act = (await db.pool.query(`select * from canon.job_actions where id = $1`, [made.action_id])).rows[0];
    expect(act).toMatchObject({
      job_id: made.job_id,
      new_job_id: made.job_id,
      action: 'redrive',
      from_status: 'not_enqueued',
      actor: 'oncall-ana',
      reason: 'trigger was off',
      event_position: null,
    });
    // the trace shows who re-drove it, under the job it made
    expect((await canon(['trace', 'off-1'], { url: db.url })).stdout).toMatch(
      new RegExp(
        `job #${made.job_id} decide \\[decision\\] queued[^\\n]*\\n.*redrive by oncall-ana at .*\\("trigger was off"\\)`,
      ),
    );

    // now the decision waits, and no decision worker has ever run here: said at once
    const w = await diagnose('off-1');
    expect(w).toMatchObject({ code: 1, verdict: 'no_workers', runbook: 'runbooks/enqueued-not-executed.md' });
    expect(w.summary).toMatch(
      new RegExp(
        `^no live decision worker: none has ever run against this database; job #${made.job_id} decide waits \\(ready for \\d+s, within the 60s grace\\)$`,
      ),
    );
    expect(w.workers).toEqual({ decision: { alive: 0, last_seen: null }, execution: { alive: 0, last_seen: null } });
    expect(w.next[0]).toMatch(/^canon work decide/);

    // a second redrive is refused while that decision is queued: one line, exit 2, nothing made
    const again = await canon(['jobs', 'redrive', 'off-1'], { url: db.url });
    expect(again.exitCode).toBe(2);
    expect(oneLineError(again)).toBe(
      `canon: off-1 has decision job #${made.job_id} queued: it reads every event of the entity, so there is nothing to re-drive (canon diagnose off-1)`,
    );
    expect(await count(`select count(*)::int as n from canon.job_actions`)).toBe(1);
  }, 240_000);

  it('a lane without a live worker names the last worker; a running decision refuses the redrive too', async () => {
    // a decision worker that ran once and stopped; the protect job it required waits with no executor
    await doc(db, 'lone-1');
    expect((await workOnce(db, {}, ['--lanes', 'decision'])).exitCode).toBe(0);
    const d = await diagnose('lone-1');
    expect(d).toMatchObject({ verdict: 'no_workers' });
    expect(d.summary).toMatch(
      /^no live execution worker: none has ever run against this database; job #\d+ protect waits/,
    );
    expect(d.workers.decision.alive).toBe(0);
    expect(d.workers.decision.last_seen).toMatchObject({ role: 'work', stopped_at: expect.any(String) });

    // a decision that was claimed and is running: the redrive has nothing to add
    await doc(db, 'busy-1');
    const worker = `decide-${uuid()}`;
    await db.pool.query(`insert into canon.workers (id, role, lanes) values ($1, 'decide', '{decision}')`, [worker]);
    await db.pool.query(`select * from canon.claim_runs('decision', $1, 100)`, [worker]);
    const running = (await db.pool.query(`select id from canon.jobs where entity_id = 'busy-1' and status = 'running'`))
      .rows[0].id;
    const r = await canon(['jobs', 'redrive', 'busy-1'], { url: db.url });
    expect(r.exitCode).toBe(2);
    expect(oneLineError(r)).toMatch(new RegExp(`busy-1 has decision job #${running} running: it reads every event`));
    const b = await diagnose('busy-1');
    expect(b).toMatchObject({ verdict: 'in_progress', problem: false });
    expect(b.summary).toMatch(new RegExp(`job #${running} decide is running on ${worker}`));
    const s = await diagnose('lone-1');
    expect(s.workers.decision).toMatchObject({ alive: 1, last_seen: { id: worker, stopped_at: null } });
    // a live decision worker: a decision queued a moment ago is simply in progress
    await doc(db, 'soon-1');
    const q = await diagnose('soon-1');
    expect(q).toMatchObject({ code: 0, verdict: 'in_progress', problem: false });
    expect(q.summary).toMatch(
      /^job #\d+ decide queued \d+s ago: waiting for one of 1 live decision worker\(s\) \(ready for \d+s, within the 60s grace\)$/,
    );
  }, 240_000);

  it('a required event whose job was deleted: NOT_ENQUEUED at once; redrive makes that job with its dedupe key and source', async () => {
    await doc(db, 'del-1');
    expect((await workOnce(db, {}, ['--lanes', 'decision'])).exitCode).toBe(0);
    const ev = (
      await db.pool.query(
        `select position, payload from canon.events where entity_id = 'del-1' and kind = 'job.protect.required'`,
      )
    ).rows[0];
    await db.pool.query(`delete from canon.jobs where source_event_position = $1`, [ev.position]);
    const d = await diagnose('del-1');
    expect(d).toMatchObject({ code: 1, verdict: 'not_enqueued' });
    expect(d.summary).toMatch(
      new RegExp(
        `^job\\.protect\\.required \\(event ${ev.position}, \\d+s old, within the 60s grace; .*\\) has no protect job`,
      ),
    );
    expect(d.next[0]).toBe('canon jobs redrive del-1');
    const r = await json(db, ['jobs', 'redrive', 'del-1']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.data.jobs).toEqual([
      expect.objectContaining({
        lane: 'execution',
        type: 'protect',
        source_event_position: ev.position,
        dedupe_key: 'del-1:protect:1',
        created: true,
      }),
    ]);
    const job = (await db.pool.query(`select * from canon.jobs where id = $1`, [r.data.jobs[0].job_id])).rows[0];
    expect(job).toMatchObject({
      type: 'protect',
      status: 'queued',
      via_gateway: true,
      dedupe_key: 'del-1:protect:1',
      payload: ev.payload.payload,
    });
    expect((await diagnose('del-1')).verdict).not.toBe('not_enqueued');
    // every event has its job now: refused, nothing made
    const none = await canon(['jobs', 'redrive', 'del-1'], { url: db.url });
    expect(none.exitCode).toBe(2);
    expect(oneLineError(none)).toBe(
      'canon: every event of del-1 has its job: nothing to re-drive (canon diagnose del-1)',
    );
    // and the pipeline goes on from there, to the end
    const w = spawnCanon(['work', '--pipeline', FAST, '--log-level', 'error'], { url: db.url, env: env() });
    try {
      await waitFor(
        async () =>
          (await db.pool.query(`select 1 from canon.events where entity_id = 'del-1' and kind = 'anchor.succeeded'`))
            .rowCount,
        { what: 'del-1 anchored' },
      );
    } finally {
      w.kill('SIGTERM');
      await w;
    }
    expect((await diagnose('del-1')).verdict).toBe('done');
  }, 240_000);

  it('two operators re-driving one entity at once make exactly one job', async () => {
    await withTriggerOff(() => doc(db, 'race-1'));
    const results = await Promise.allSettled(
      [1, 2, 3, 4].map((i) => redrive(db.pool, 'race-1', { actor: `op-${i}` }, { dryRun: false })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((x) => x.status === 'rejected'))
      expect((r as PromiseRejectedResult).reason.message).toMatch(/race-1 has decision job #\d+ queued/);
    expect(await count(`select count(*)::int as n from canon.jobs where entity_id = 'race-1'`)).toBe(1);
    expect(
      await count(
        `select count(*)::int as n from canon.job_actions a join canon.jobs j on j.id = a.job_id where j.entity_id = 'race-1'`,
      ),
    ).toBe(1);
  }, 240_000);

  it('refuses bad input with one line and exit 2, changing nothing', async () => {
    for (const [args, msg] of [
      [['jobs', 'redrive', 'nobody-here'], /no entity "nobody-here" in the ledger/],
      [['jobs', 'redrive', 'bad id'], /entity id "bad id" is invalid/],
      [['jobs', 'redrive', 'off-1', '--actor', ' '], /--actor must be 1 to 200 characters/],
      [['gateway', 'trigger', 'off'], /gateway trigger takes "on" or nothing, got "off"/],
    ] as const) {
      const r = await canon([...args], { url: db.url, env: env() });
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(oneLineError(r)).toMatch(msg);
    }
  }, 240_000);
});
