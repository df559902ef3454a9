// The dashboard's components on fixed fixtures (ink-testing-library): what the overview shows
// and where, the frame never taller than rows-1 at any size and in any view, keys, drill-down,
// confirmed actions, --readonly, pausing, search, help, "disconnected, retrying" and recovery.
import { stripVTControlCharacters as strip } from 'node:util';
import chalk from 'chalk';
import { cleanup, render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import { App } from '../src/tui/App.js';
import { Overview } from '../src/tui/components/Overview.js';
import { shortId, sparkline, wrap } from '../src/tui/format.js';
import type { View } from '../src/tui/items.js';
import { allocate, windowStart } from '../src/tui/layout.js';
import { plainSnapshot } from '../src/tui/run.js';
import { lagSeries } from '../src/tui/snapshot.js';
import { fakeSource, NOW, POISON_ERROR, plain, snapshot } from './watch-fixtures.js';

afterEach(() => cleanup());

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));
const KEY = { up: '\x1b[A', down: '\x1b[B', enter: '\r', esc: '\x1b', ctrlC: '\x03' };

function mount(
  opts: {
    cols?: number;
    rows?: number;
    readonly?: boolean;
    initial?: View;
    big?: boolean;
    fail?: () => Error | undefined;
    interval?: number;
  } = {},
) {
  const fake = fakeSource({ big: opts.big, fail: opts.fail });
  const size = { cols: opts.cols ?? 100, rows: opts.rows ?? 30 };
  const r = render(
    <App
      source={fake.source}
      interval={opts.interval ?? 0.05}
      readonly={!!opts.readonly}
      c={plain}
      size={size}
      initial={opts.initial}
    />,
  );
  const frame = () => strip(r.lastFrame() ?? '');
  const until = async (cond: (f: string) => boolean, what: string) => {
    for (let i = 0; i < 200; i++) {
      if (cond(frame())) return frame();
      await tick(10);
    }
    throw new Error(`timed out waiting for ${what}; last frame:\n${frame()}`);
  };
  const press = async (...keys: string[]) => {
    for (const k of keys) {
      await tick(); // Ink reads stdin on the next tick
      r.stdin.write(k);
    }
    await tick();
  };
  return { ...r, ...fake, frame, until, press, size };
}

const selectedLine = (f: string) => f.split('\n').find((l) => l.startsWith('› ')) ?? '';

describe('overview', () => {
  it('fits 80×24 with tiles, sparklines, alerts, types, workers, failures and steering', async () => {
    const m = mount({ cols: 80, rows: 24 });
    const f = await m.until((x) => x.includes('JOB TYPE'), 'the overview');
    expect(f.split('\n').length).toBeLessThanOrEqual(23);
    const lines = f.split('\n');
    const labels = lines.findIndex((l) => /^lag\s+gap\s+queued\s+running\s+stuck\s+dead 24h\s+success 1h/.test(l));
    expect(labels).toBeGreaterThan(0);
    expect(lines[labels + 1].split(/\s+/).filter(Boolean)).toEqual(['2.5s', '0', '4', '2', '0', '1', '97.0%']);
    expect(f).toMatch(/throughput [▁-█]{30} 58\/min peak 58/);
    expect(f).toMatch(/lag\s+[▁-█]{30} 2\.5s peak 4s/);
    expect(f).toContain('WARNING  CanonDeadJobs: 1 dead job in the last 24 h');
    expect(f).toMatch(/› decide\s+dec/);
    expect(f).toMatch(/protect\s+exec\s+3\s+2\s+1\s+2\.5s\s+ok/);
    expect(f).toMatch(/tsa\s+exec\s+1\s+0\s+0\s+—\s+PAUSED, breaker open/);
    expect(f).toContain('WORKERS  1 alive, 1 stale');
    expect(f).toMatch(/protect\s+DEAD\s+#11\s+2\/2\s+poison-1\s+handler_error/);
    expect(f).toMatch(/flag D1_RUN_TSA_ENABLED\s+KILLED\s+2 held/);
    expect(f).toContain('canon watch ● WARNING');
    expect(f).toContain('workers 1');
    expect(m.calls[0]).toEqual({});
  });

  it('never draws a frame taller than rows-1, at any size, in any view, with long lists', async () => {
    const sizes = [
      [80, 24],
      [40, 8],
      [60, 12],
      [100, 30],
      [119, 50],
      [120, 40],
      [200, 60],
      [30, 5],
    ];
    const views: View[] = [
      { kind: 'overview', cursor: 35 },
      { kind: 'type', type: 'protect', cursor: 2 },
      { kind: 'job', jobId: 11, entity: 'poison-1', cursor: 3 },
      { kind: 'entity', entity: 'poison-1', cursor: 0 },
    ];
    for (const [cols, rows] of sizes) {
      for (const initial of views) {
        const m = mount({ cols, rows, initial, big: true });
        const f = await m.until((x) => !x.includes('loading'), `${initial.kind} at ${cols}×${rows}`);
        const lines = f.split('\n');
        expect(lines.length, `${initial.kind} at ${cols}×${rows}:\n${f}`).toBeLessThanOrEqual(rows - 1);
        expect(Math.max(...lines.map((l) => l.length)), `${initial.kind} at ${cols}×${rows}`).toBeLessThanOrEqual(cols);
        m.unmount();
      }
    }
  });

  it('uses more room when there is more: two columns and longer lists on a big terminal', async () => {
    const small = mount({ cols: 80, rows: 24, big: true });
    const fs = await small.until((x) => x.includes('JOB TYPE'), 'small');
    small.unmount();
    const big = mount({ cols: 200, rows: 60, big: true });
    const fb = await big.until((x) => x.includes('JOB TYPE'), 'big');
    const count = (f: string, re: RegExp) => f.split('\n').filter((l) => re.test(l)).length;
    expect(count(fb, /extra_\d+/)).toBeGreaterThan(count(fs, /extra_\d+/));
    expect(fb).toMatch(/JOB TYPE.*ALERTS/); // side by side
    expect(fb.split('\n')[0]).toContain('canon@db.example:5432/canon');
    expect(fs).toMatch(/shown/); // a cut list says how much of it is on screen
  });

  it('colours each tile by the severity of the alert that watches it', async () => {
    const level = chalk.level;
    chalk.level = 1;
    try {
      const calm = render(
        <Overview
          snap={snapshot({}, { health: { problems: [], status: 'OK' } })}
          cols={100}
          rows={30}
          cursor={-1}
          now={NOW}
        />,
      );
      const hot = render(
        <Overview
          snap={snapshot(
            {},
            {
              health: {
                stuck_count: 3,
                problems: [
                  {
                    alert: 'CanonStuckJobs',
                    severity: 'critical',
                    summary: '3 jobs stuck',
                    runbook: 'runbooks/stuck-jobs.md',
                  },
                ],
                status: 'CRITICAL',
              },
            },
          )}
          cols={100}
          rows={30}
          cursor={-1}
          now={NOW}
        />,
      );
      const valueRow = (f: string) => f.split('\n')[1];
      // green (32) when calm, red (31) when CanonStuckJobs fires; "running" has no alert and no colour
      expect(valueRow(calm.lastFrame()!)).toMatch(/\x1b\[32m0\s+/);
      expect(valueRow(hot.lastFrame()!)).toMatch(/\x1b\[31m3\s+/);
      expect(valueRow(hot.lastFrame()!)).toMatch(/\x1b\[39m2\s+/);
    } finally {
      chalk.level = level;
    }
  });
});

describe('keys and drill-down', () => {
  it('j/k and arrows move the cursor across types, failures and flags; g/G jump', async () => {
    const m = mount();
    await m.until((x) => x.includes('› decide'), 'the cursor on the first type');
    await m.press('j');
    expect(selectedLine(m.frame())).toMatch(/^› protect/);
    await m.press(KEY.down, KEY.down);
    expect(selectedLine(m.frame())).toMatch(/DEAD\s+#11/);
    await m.press('k');
    expect(selectedLine(m.frame())).toMatch(/^› tsa/);
    await m.press('G');
    expect(selectedLine(m.frame())).toMatch(/flag D1_RUN_TSA_ENABLED/);
    await m.press(KEY.up);
    expect(selectedLine(m.frame())).toMatch(/#13/);
    await m.press('g');
    expect(selectedLine(m.frame())).toMatch(/^› decide/);
  });

  it('Enter on a type shows its jobs by state; Enter on a job shows the dead-job detail and trace; Esc goes back', async () => {
    const m = mount();
    await m.until((x) => x.includes('› decide'), 'overview');
    await m.press('j', KEY.enter);
    let f = await m.until((x) => x.includes('STATE'), 'the type view');
    expect(m.calls).toContainEqual({ type: 'protect' });
    expect(f).toContain('protect [execution]  queued 3 (ready 3, held 0)  running 2  dead 1 (24 h: 1)');
    expect(f).toMatch(/› DEAD\s+#11\s+poison-1\s+2\/2\s+max_attempts_exceeded: RetryableError: poison/);
    expect(f).toMatch(/RUNNING\s+#20\s+doc-20/);
    expect(f).toMatch(/QUEUED\s+#21\s+doc-21\s+0\/2\s+ready, waiting/);
    await m.press(KEY.enter);
    f = await m.until((x) => x.includes('ATTEMPTS'), 'the job view');
    expect(m.calls).toContainEqual({ entity: 'poison-1' });
    expect(f).toMatch(
      /job #11 protect \[execution\] DEAD\s+entity poison-1\s+attempts 2\/2\s+reason max_attempts_exceeded/,
    );
    expect(f).toContain(`last error: ${POISON_ERROR}`);
    expect(f).toMatch(/2 failed .*handler_error: RetryableError: poison document/);
    expect(f).toMatch(/poison-1 \(entity\): 3 events, 2 jobs, 3 runs, 1 dead/);
    expect(f).toMatch(/job #11 protect \[execution\] DEAD/);
    await m.press(KEY.esc);
    await m.until((x) => x.includes('STATE') && x.includes('type protect'), 'back to the type');
    await m.press(KEY.esc);
    await m.until((x) => x.includes('JOB TYPE'), 'back to the overview');
    expect(selectedLine(m.frame())).toMatch(/^› protect/); // the cursor was kept
  });

  it('/ finds an entity and shows its trace; an unknown one says so', async () => {
    const m = mount();
    await m.until((x) => x.includes('JOB TYPE'), 'overview');
    await m.press('/', 'poison', '-x', '\x7f', '\x7f', '-1');
    expect(m.frame()).toContain('find entity: poison-1');
    await m.press(KEY.enter);
    const f = await m.until((x) => x.includes('(entity)'), 'the trace');
    expect(f).toContain('entity poison-1');
    expect(f).toMatch(/document\.created/);
    await m.press('/', 'ghost', KEY.enter);
    await m.until((x) => x.includes('no entity "ghost" in the ledger'), 'the unknown entity');
  });

  it('? shows the keys and any key closes it', async () => {
    const m = mount();
    await m.until((x) => x.includes('JOB TYPE'), 'overview');
    await m.press('?');
    expect(m.frame()).toContain('KEYS');
    expect(m.frame()).toMatch(/q\s+Ctrl-C\s+quit/);
    await m.press('x');
    expect(m.frame()).toContain('JOB TYPE');
  });

  it.each([
    ['q', 'q'],
    ['Ctrl-C', KEY.ctrlC],
  ])('%s quits and stops refreshing', async (_name, key) => {
    const m = mount();
    await m.until((x) => x.includes('JOB TYPE'), 'overview');
    await m.press(key);
    const n = m.calls.length;
    await tick(200);
    expect(m.calls.length).toBe(n);
  });

  it('p pauses refreshing (and says so) and p resumes it', async () => {
    const m = mount();
    await m.until((x) => x.includes('JOB TYPE'), 'overview');
    const top = () => m.frame().split('\n')[0];
    await m.press('p');
    expect(top()).toContain('PAUSED');
    const n = m.calls.length;
    await tick(250);
    expect(m.calls.length).toBe(n);
    await m.press('p');
    await m.until(() => m.calls.length > n + 1, 'refreshes again');
    expect(top()).not.toContain('PAUSED');
  });

  it('follows a terminal resize', async () => {
    const fake = fakeSource();
    const r = render(<App source={fake.source} interval={0.05} readonly={false} c={plain} />);
    const frame = () => strip(r.lastFrame() ?? '');
    for (let i = 0; i < 100 && !frame().includes('JOB TYPE'); i++) await tick(10);
    expect(frame().split('\n').length).toBe(23); // ink-testing-library has no rows: 24 assumed
    Object.defineProperty(r.stdout, 'rows', { value: 40, configurable: true });
    r.stdout.emit('resize');
    for (let i = 0; i < 100 && frame().split('\n').length !== 39; i++) await tick(10);
    expect(frame().split('\n').length).toBe(39);
  });
});

describe('actions', () => {
  it('r on a dead job asks y/N with what it will do; n changes nothing, y runs it and shows the result', async () => {
    const m = mount();
    await m.until((x) => x.includes('JOB TYPE'), 'overview');
    await m.press('j', 'j', 'j', 'r');
    await m.until((x) => x.includes('[y/N]'), 'the prompt');
    expect(m.frame()).toContain('retry job #11? [y/N]');
    expect(m.prepared).toEqual([
      { kind: 'retry', job: { id: 11, type: 'protect', entity_id: 'poison-1', status: 'failed', dead: true } },
    ]);
    await m.press('n');
    expect(m.frame()).toContain('cancelled: nothing changed');
    expect(m.ran).toEqual([]);
    await m.press('r');
    await m.until((x) => x.includes('[y/N]'), 'the prompt again');
    await m.press('y');
    await m.until((x) => x.includes('done: retry job #11'), 'the result');
    expect(m.ran).toHaveLength(1);
  });

  it('refuses to retry a job that is not dead, without asking', async () => {
    const m = mount();
    await m.until((x) => x.includes('JOB TYPE'), 'overview');
    await m.press('j', 'j', 'j', 'j', 'r');
    expect(m.frame()).toContain('job #13 is queued: only dead (or cancelled) jobs can be retried');
    expect(m.prepared).toEqual([]);
  });

  it('R retries all dead jobs of the type, P pauses or resumes it, K kills the flag, c cancels; each confirmed', async () => {
    const m = mount();
    await m.until((x) => x.includes('JOB TYPE'), 'overview');
    await m.press('j', 'R');
    await m.until((x) => x.includes('retry 1 dead protect job? [y/N]'), 'retry-type prompt');
    await m.press('y');
    await m.until((x) => x.includes('done: retry 1 dead protect job'), 'retry-type done');
    await m.press('j', 'P');
    await m.until((x) => x.includes('resume tsa? [y/N]'), 'resume prompt (tsa is paused)');
    await m.press('n', 'k', 'P');
    await m.until((x) => x.includes('pause protect? [y/N]'), 'pause prompt');
    await m.press('y');
    await m.press('G', 'K');
    expect(m.frame()).toContain('D1_RUN_TSA_ENABLED is already killed');
    await m.press('g', 'j', 'j', 'j', 'c');
    await m.until((x) => x.includes('cancel job #11? [y/N]'), 'cancel prompt');
    await m.press('y');
    expect(m.ran.map((a) => a.kind)).toEqual(['retry-type', 'pause', 'cancel']);
    expect(m.prepared.map((a) => a.kind)).toEqual(['retry-type', 'pause', 'pause', 'cancel']);
  });

  it('--readonly refuses every action without asking', async () => {
    const m = mount({ readonly: true });
    await m.until((x) => x.includes('JOB TYPE'), 'overview');
    expect(m.frame()).toContain('read-only');
    for (const k of ['R', 'P']) {
      await m.press(k);
      expect(m.frame()).toContain('read-only session (--readonly): actions are refused');
    }
    await m.press('j', 'j', 'j', 'r');
    expect(m.frame()).toContain('actions are refused');
    expect(m.prepared).toEqual([]);
  });
});

describe('sturdiness', () => {
  it('shows "disconnected, retrying" while the database is lost and recovers on its own', async () => {
    let down = false;
    const lost = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const m = mount({ fail: () => (down ? lost : undefined) });
    await m.until((x) => x.includes('JOB TYPE'), 'overview');
    down = true;
    const f = await m.until((x) => x.includes('disconnected, retrying'), 'the outage');
    expect(f).toContain('JOB TYPE'); // the last snapshot stays on screen
    const n = m.calls.length;
    await m.until(() => m.calls.length > n + 1, 'retries');
    down = false;
    await m.until((x) => !x.includes('disconnected'), 'recovery');
  });

  it('any other refresh error is shown and retried too', async () => {
    let fail = true;
    const m = mount({ fail: () => (fail ? new Error('relation "canon.jobs" does not exist') : undefined) });
    await m.until((x) => x.includes('refresh failed, retrying'), 'the error');
    expect(m.frame()).toContain('relation "canon.jobs" does not exist');
    fail = false;
    await m.until((x) => x.includes('JOB TYPE') && !x.includes('refresh failed'), 'recovery');
  });

  it('says the terminal is too small instead of drawing a clipped mess', async () => {
    const m = mount({ cols: 30, rows: 5 });
    await m.until((x) => x.includes('too small'), 'the notice');
    expect(m.frame().split('\n')).toHaveLength(1);
  });
});

describe('plain snapshot and helpers', () => {
  it('renders every row of every section as text without colour codes', () => {
    const s = snapshot({}, { big: true });
    const text = plainSnapshot(s, 100, false);
    expect(text).not.toMatch(/\x1b\[/);
    expect(text).not.toContain('shown'); // nothing is cut: the plain snapshot is as long as it needs
    expect(text.split('\n').filter((l) => /extra_\d+/.test(l))).toHaveLength(30);
    expect(text).toContain('canon watch ● WARNING  snapshot');
    expect(text).toMatch(/^\s*paused tsa by alice/m);
    expect(text).toMatch(/breaker tsa OPEN\s+10 failures/);
  });

  it('allocate never gives more rows than the budget, and drops what does not fit its minimum', () => {
    for (let budget = 0; budget < 40; budget++) {
      const a = allocate(budget, [
        { key: 'a', min: 2, want: 2 },
        { key: 'b', min: 3, want: 20 },
        { key: 'c', min: 2, want: 5 },
      ]);
      expect(a.a + a.b + a.c).toBeLessThanOrEqual(budget);
      if (a.b > 0) expect(a.b).toBeGreaterThanOrEqual(3);
    }
    expect(
      allocate(6, [
        { key: 'a', min: 2, want: 2 },
        { key: 'b', min: 5, want: 9 },
        { key: 'c', min: 1, want: 3 },
      ]),
    ).toEqual({ a: 2, b: 0, c: 3 });
  });

  it('windowStart keeps the cursor visible', () => {
    expect(windowStart(10, 3, 0)).toBe(0);
    expect(windowStart(10, 3, 5)).toBe(3);
    expect(windowStart(10, 3, 9)).toBe(7);
    expect(windowStart(2, 3, 1)).toBe(0);
    expect(windowStart(10, 3, -1)).toBe(0);
  });

  it('sparkline, short ids and wrapping', () => {
    expect(sparkline([0, 1, 8])).toBe('▁▂█');
    expect(sparkline([0, 0])).toBe('▁▁');
    expect(sparkline([1, 1000])).toBe('▂█'); // a single failure in a busy half hour still shows
    expect(shortId('execute-9f8e7d6c-1111-4222-8333-444455556666-12-3')).toBe('execute-9f8e7d6c…-12-3');
    expect(wrap('abcdefghij', 4, 2)).toEqual(['abcd', 'efg…']);
  });

  it('lagSeries takes the longest wait of runs in each minute, or of the job still waiting', () => {
    const now = Date.parse('2026-03-01T12:02:30Z');
    const rows = [
      { minute: '2026-03-01T12:00:00Z', max_wait: 1.5 },
      { minute: '2026-03-01T12:01:00Z', max_wait: null },
      { minute: '2026-03-01T12:02:00Z', max_wait: 0.2 },
    ];
    // nothing waiting now: the runs' waits
    expect(lagSeries(rows, 0, now)).toEqual([1.5, 0, 0.2]);
    // a job ready since 12:01:40 still waits (lag 50 s): 20 s at the end of 12:01, 50 s now
    expect(lagSeries(rows, 50, now)).toEqual([1.5, 20, 50]);
  });
});
