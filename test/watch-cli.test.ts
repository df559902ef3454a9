// `canon watch` as a process without a terminal: one plain snapshot (or --json) and exit 0
// instead of a crash on raw mode; bad input is one line and exit 2; an unreachable database
// is one line without the password and exit 3.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canon, createTestDb, oneLineError, type TestDb } from './helpers.js';
import { doc, env, json, workOnce } from './seeing-common.js';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('watch-cli');
  await doc(db, 'ok-1');
  await doc(db, 'poison-1', 'bad #poison');
  // --once stops when nothing is ready; the poison job's retry waits out a short backoff
  for (
    let i = 0;
    i < 8 && (await db.pool.query(`select 1 from canon.jobs where status in ('queued', 'running')`)).rowCount;
    i++
  )
    await workOnce(db, { FAST_ATTEMPTS: '2' });
}, 120_000);
afterAll(async () => db.end());

describe('without a terminal', () => {
  it('prints one plain snapshot with no colour codes and exits 0 (also with CI set)', async () => {
    for (const extra of [{}, { CI: 'true', FORCE_COLOR: '1' }]) {
      const r = await canon(['watch'], { url: db.url, env: { ...env(), ...extra } });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).not.toMatch(/\x1b\[/);
      expect(r.stdout).toMatch(/^canon watch ● WARNING {2}snapshot {2}workers 0/);
      expect(r.stdout).toMatch(/^lag\s+gap\s+queued\s+running\s+stuck\s+dead 24h\s+success 1h$/m);
      expect(r.stdout).toMatch(/^\s+protect\s+exec\s+0\s+0\s+1\s/m);
      expect(r.stdout).toMatch(/protect\s+DEAD\s+#\d+\s+2\/2\s+poison-1\s+handler_error: RetryableError: poison do/);
      expect(r.stdout).toContain('WARNING  CanonDeadJobs: 1 dead job in the last 24 h');
      expect(r.stdout).not.toContain(new URL(db.url).password);
    }
  });

  it('--json is the snapshot, and its health part is what canon health --json says', async () => {
    const w = await json(db, ['watch']);
    const h = await json(db, ['health']);
    expect(w.exitCode, w.stderr).toBe(0);
    // health --json adds its one-line status (the monitoring-plugin line) to the same object
    const drop = ({ checked_at, estimated_lag_seconds, status_line, ...rest }: Record<string, unknown>) => rest;
    expect(drop(w.data.health)).toEqual(drop(h.data));
    expect(Object.keys(w.data)).toEqual([
      'database',
      'fetched_at',
      'query_ms',
      'thresholds',
      'health',
      'types',
      'minutes',
      'workers',
      'workers_total',
      'failures',
      'flags',
      'breakers',
      'focus_type',
      'focus_entity',
    ]);
    expect(w.data.minutes).toHaveLength(30);
    expect(w.data.database).toBe(`postgres@127.0.0.1:${new URL(db.url).port}/${db.name}`);
  });

  it('--once on its own prints the snapshot too, and --threshold changes the colours and alerts like health', async () => {
    const r = await canon(['watch', '--once', '--threshold', 'dead_max=5', '--threshold', 'success_rate_min=0.5'], {
      url: db.url,
      env: env(),
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/● OK/);
    expect(r.stdout).toContain('ALERTS  none firing');
  });
});

describe('bad input and an unreachable database', () => {
  it.each([
    [['--interval', '0.5'], '--interval must be from 1s to 3600s, got "0.5"'],
    [['--interval', 'soon'], '--interval must be a duration like 30s, 15m or 2h, got "soon"'],
    [['--interval', '2h'], '--interval must be from 1s to 3600s, got "2h"'],
    [['--threshold', 'nope=1'], 'unknown threshold "nope"'],
    [['--actor', ''], '--actor "" is invalid'],
    [['--bogus'], "unknown option '--bogus'"],
  ])('%j → exit 2 with one line', async (args, msg) => {
    const r = await canon(['watch', ...args], { url: db.url });
    expect(r.exitCode).toBe(2);
    expect(oneLineError(r)).toContain(msg);
    expect(r.stdout).toBe('');
  });

  it('exits 3 with one line and no password when the database cannot be reached', async () => {
    const r = await canon(['watch'], { url: 'postgres://watcher:s3cret-pw@127.0.0.1:1/canon' });
    expect(r.exitCode).toBe(3);
    expect(oneLineError(r)).toContain('cannot connect to Postgres at watcher@127.0.0.1:1/canon');
    expect(r.stderr).not.toContain('s3cret-pw');
  });

  it('--help starts with examples and lists the keys and exit codes', async () => {
    const r = await canon(['watch', '--help']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('Examples:\n  $ canon watch');
    expect(r.stdout).toMatch(/Keys:\n\s+↑\/↓ {2}k\/j/);
    expect(r.stdout).toContain('Exit codes: 0 ok');
  });
});
