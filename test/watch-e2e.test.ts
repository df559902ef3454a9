// `canon watch` end to end in a real terminal: tmux runs the real binary against a real
// database while the example pipeline runs in a `canon work` process and a poison document
// dies. The screen's numbers agree with `canon health --json` taken at the same moment;
// drilling into the dead job shows its error; retrying it from the dashboard requeues it
// through the gateway; `q` exits 0 and leaves the terminal usable (cooked mode, echo on,
// the alternate screen gone). Under CI a missing tmux fails the test: .ci/run installs it.
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fmtAge } from '../src/format.js';
import { pct } from '../src/tui/format.js';
import { canon, createTestDb, root, spawnCanon, type TestDb, waitFor } from './helpers.js';
import { doc, env, FAST, workOnce } from './seeing-common.js';

/** fmtAge's text back to seconds (12ms, 4.5s, 3m, 1.2h). */
const seconds = (t: string) => {
  const m = /^([\d.]+)(ms|s|m|h)$/.exec(t);
  return m ? Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as 'ms' | 's' | 'm' | 'h'] : NaN;
};

const hasTmux = spawnSync('tmux', ['-V']).status === 0;
const inCI = !!process.env.CI;

if (!hasTmux && inCI) {
  it('tmux is installed (CI must run the terminal test, not skip it)', () => {
    throw new Error('tmux is not installed: .ci/run installs it from Debian; the dashboard E2E cannot run without it');
  });
}

describe.skipIf(!hasTmux)('canon watch in tmux', () => {
  const sock = `canon-watch-e2e-${process.pid}`;
  const tmux = (...args: string[]) =>
    execFileSync('tmux', ['-L', sock, '-f', '/dev/null', ...args], { encoding: 'utf8' });
  const screen = () => tmux('capture-pane', '-p', '-t', 'e2e');
  const keys = async (...k: string[]) => {
    for (const key of k) {
      tmux('send-keys', '-t', 'e2e', key);
      await new Promise((r) => setTimeout(r, 150)); // one key per read, as a person types
    }
  };
  const see = (what: string | RegExp, timeout = 15_000) =>
    waitFor(async () => (typeof what === 'string' ? screen().includes(what) : what.test(screen())) && screen(), {
      what: `${what} on screen`,
      timeout,
      interval: 100,
    }).catch((e) => {
      throw new Error(`${(e as Error).message}; the screen:\n${screen()}`);
    });
  let db: TestDb;
  let worker: ReturnType<typeof spawnCanon>;
  let deadId: number;

  beforeAll(async () => {
    db = await createTestDb('watch-e2e');
    // the pipeline's job types first (a worker with nothing to do declares them and exits),
    // then anchor paused: the good documents wait at their last step, so the queue holds still
    expect((await workOnce(db, { FAST_ATTEMPTS: '2' })).exitCode).toBe(0);
    expect((await canon(['jobs', 'pause', 'anchor', '--reason', 'e2e'], { url: db.url })).exitCode).toBe(0);
    for (const id of ['ok-1', 'ok-2', 'ok-3']) await doc(db, id);
    await doc(db, 'poison-1', 'bad #poison');
    worker = spawnCanon(['work', '--pipeline', FAST, '--log-level', 'error'], {
      url: db.url,
      env: env({ FAST_ATTEMPTS: '2' }),
    });
    await waitFor(
      async () =>
        (
          await db.pool.query(`select 1 where (select count(*) from canon.jobs where type = 'anchor' and status = 'queued') = 3
                                 and exists (select 1 from canon.dead_jobs where entity_id = 'poison-1')
                                 and not exists (select 1 from canon.jobs where status = 'running' or (status = 'queued' and type <> 'anchor'))`)
        ).rowCount! > 0,
      { what: 'three documents waiting at anchor and the poison job dead', timeout: 30_000 },
    );
    deadId = (await db.pool.query(`select id from canon.dead_jobs where entity_id = 'poison-1'`)).rows[0].id;
    tmux(
      'new-session',
      '-d',
      '-s',
      'e2e',
      '-x',
      '120',
      '-y',
      '40',
      '-e',
      `DATABASE_URL=${db.url}`,
      'bash --norc --noprofile',
    );
    // CI=true reaches the shell through tmux's environment; the dashboard would print one snapshot
    await keys(`cd ${root} && env -u CI node bin/canon watch --interval 1 --actor e2e-oncall`, 'Enter');
  }, 90_000);

  afterAll(async () => {
    try {
      tmux('kill-server');
    } catch {
      /* already gone */
    }
    worker?.kill('SIGTERM');
    await worker;
    await db?.end();
  });

  it('shows the same numbers as canon health --json taken at the same time', async () => {
    await see(/dead 24h[\s\S]*JOB TYPE[\s\S]*RECENT FAILURES/);
    // the screen refreshes every second; compare a capture with the health read right after it
    let last = '';
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const s = screen();
      const hr = await canon(['health', '--json'], { url: db.url });
      if (!hr.stdout) throw new Error(`canon health printed nothing (exit ${hr.exitCode}): ${hr.stderr}`);
      const h = JSON.parse(hr.stdout);
      const lines = s.split('\n');
      const at = lines.findIndex((l) => /^lag\s+gap\s+queued/.test(l));
      const tile = (label: string) => lines[at + 1].slice(lines[at].indexOf(label)).split(/\s+/)[0];
      const got = {
        gap: tile('gap'),
        queued: tile('queued'),
        running: tile('running'),
        stuck: tile('stuck'),
        dead: tile('dead 24h'),
        success: tile('success 1h'),
        workers: /workers (\d+)/.exec(lines[0])?.[1],
        status: /● (\w+)/.exec(lines[0])?.[1],
      };
      const want = {
        gap: String(h.event_to_job_gap),
        queued: String(h.jobs_queued.total),
        running: String(h.jobs_processing.count),
        stuck: String(h.stuck_count),
        dead: String(h.dead_last_24h),
        success: pct(h.throughput.last_1h.success_rate),
        workers: String(h.workers.alive),
        status: h.status,
      };
      const lagScreen = tile('lag');
      // lag grows by the second while anchor waits: the screen is up to one refresh (1 s) older
      // than its capture, and health is read after the capture (a process start on a busy machine)
      const slack = (Date.now() - t0) / 1000 + 1.5;
      const lagClose =
        lagScreen === fmtAge(h.estimated_lag_seconds) ||
        Math.abs(seconds(lagScreen) - h.estimated_lag_seconds) <= slack;
      if (JSON.stringify(got) === JSON.stringify(want) && lagClose) {
        expect(want).toMatchObject({ queued: '3', running: '0', dead: '1', gap: '0', workers: '1' });
        return;
      }
      last = `screen ${JSON.stringify({ ...got, lag: lagScreen })}\nhealth ${JSON.stringify({ ...want, lag: h.estimated_lag_seconds })}\n${s}`;
      await new Promise((r) => setTimeout(r, 300));
    }
    throw new Error(`the screen and canon health disagree:\n${last}`);
  });

  it('drills into the dead job and shows its error', async () => {
    // at 120 columns the failures are the right-hand column: the cursor is mid-line
    const row = new RegExp(`› \\d\\d:\\d\\d:\\d\\d protect\\s+DEAD\\s+#${deadId}\\s`);
    for (let i = 0; i < 25 && !row.test(screen()); i++) await keys('j');
    expect(screen()).toMatch(row);
    await keys('Enter');
    const s = await see('ATTEMPTS');
    expect(s).toMatch(new RegExp(`job #${deadId} protect \\[execution\\] DEAD\\s+entity poison-1\\s+attempts 2/2`));
    expect(s).toContain('last error: RetryableError: poison document: this handler always fails');
    expect(s).toMatch(/poison-1 \(entity\): \d+ events, \d+ jobs, \d+ runs, 1 dead/);
  });

  it('retries it from the dashboard: confirmed, recorded, and requeued through the gateway', async () => {
    await keys('r');
    await see(`retry job #${deadId} (protect, dead, entity poison-1)? [y/N]`);
    await keys('y');
    const s = await see(/job #\d+ retried as job #\d+ by e2e-oncall/);
    const newId = Number(/retried as job #(\d+)/.exec(s)![1]);
    const a = (await db.pool.query(`select * from canon.job_actions where job_id = $1`, [deadId])).rows[0];
    expect(a).toMatchObject({ action: 'retry', new_job_id: newId, actor: 'e2e-oncall', reason: 'via canon watch' });
    const j = (
      await db.pool.query(
        `select j.type, j.entity_id, j.via_gateway, e.kind, e.payload->>'retry_of' as retry_of
                                      from canon.jobs j join canon.events e on e.position = j.source_event_position where j.id = $1`,
        [newId],
      )
    ).rows[0];
    expect(j).toEqual({
      type: 'protect',
      entity_id: 'poison-1',
      via_gateway: true,
      kind: 'job.protect.required',
      retry_of: String(deadId),
    });
    // the running worker takes the new job (and the poison kills it again, with its own record)
    await waitFor(
      async () => (await db.pool.query(`select 1 from canon.job_runs where job_id = $1`, [newId])).rowCount! > 0,
      { what: 'the retry to run' },
    );
    await see(/retried as job #\d+ by e2e-oncall/);
  });

  it('q exits 0 and leaves the terminal usable', async () => {
    await keys('q');
    // the alternate screen is gone and the shell prompt is back
    await waitFor(async () => !screen().includes('JOB TYPE') && /^\S*[#$]\s*$/m.test(screen()), {
      what: 'the shell prompt',
      timeout: 15_000,
    });
    await keys(
      'echo "rc=$?"; stty -a | grep -ow -e -icanon -e icanon -e -echo -e echo | head -2 | tr "\\n" " "; echo',
      'Enter',
    );
    const s = await see(/^rc=\d+$/m);
    expect(s).toMatch(/^rc=0$/m);
    expect(s).toMatch(/^icanon echo\s*$/m);
  });
});
