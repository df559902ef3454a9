// `canon serve` over real HTTP on loopback: the public /health, the bearer-token rules of
// /health/detailed and /dead-jobs, /metrics checked by promtool, a database that is down, and
// bad options. Plus the shipped Prometheus rules: promtool check rules and test rules.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RULES } from '../src/observe/alerts.js';
import { canon, createTestDb, oneLineError, root, spawnCanon, type TestDb, waitFor } from './helpers.js';
import { doc, env, FAST } from './seeing-common.js';

const TOKEN = 'test-token-0123456789abcdef';

/** promtool where it exists; under CI its absence is a failure, not a skip (.ci/run installs it). */
const promtool = await execa('promtool', ['--version'], { reject: false })
  .then((r) => r.exitCode === 0)
  .catch(() => false);
const needPromtool = (what: string) => {
  if (!promtool && process.env.CI)
    throw new Error(
      `promtool is missing under CI: ${what} cannot be checked (.ci/run installs the Debian package prometheus)`,
    );
  return promtool;
};

type Server = { url: string; proc: ReturnType<typeof spawnCanon>; stop(): Promise<number> };
async function serve(url: string, args: string[] = [], extraEnv: Record<string, string> = {}): Promise<Server> {
  const proc = spawnCanon(['serve', '--port', '0', ...args], { url, env: extraEnv, buffer: false });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const base = await waitFor(async () => /serving (http:\/\/127\.0\.0\.1:\d+)/.exec(err)?.[1], {
    what: `serve to listen (stderr: ${err})`,
    timeout: 20_000,
  });
  const stop = async () => {
    proc.kill('SIGTERM');
    return (await proc).exitCode ?? -1;
  };
  return { url: base, proc, stop };
}
const get = async (base: string, p: string, init: RequestInit = {}) => {
  const r = await fetch(base + p, init);
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, json: () => JSON.parse(text) };
};
const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });

let db: TestDb;
let srv: Server;
beforeAll(async () => {
  db = await createTestDb('seeing-serve');
  await doc(db, 'ok-1');
  await doc(db, 'perm-1', 'nope #permanent');
  const r = await canon(['work', '--once', '--pipeline', FAST], { url: db.url, env: env() });
  expect(r.exitCode, r.stderr).toBe(0);
  srv = await serve(db.url, [], { CANON_SERVE_TOKEN: TOKEN });
});
afterAll(async () => {
  expect(await srv.stop()).toBe(0);
  await db.end();
});

describe('serve', () => {
  it('/health is public and minimal; WARNING still answers 200', async () => {
    const r = await get(srv.url, '/health');
    expect(r.status).toBe(200);
    expect(Object.keys(r.json()).sort()).toEqual(['status', 'timestamp']);
    expect(r.json().status).toBe('warning'); // one dead job
  });

  it('/health/detailed needs the bearer token: none, wrong, or another length is 401; the right one gets the seed fields', async () => {
    for (const init of [
      {},
      bearer('wrong-token-0123456789abcdef'),
      bearer('x'),
      bearer(`${TOKEN}x`),
      { headers: { authorization: `Basic ${TOKEN}` } },
    ]) {
      const r = await get(srv.url, '/health/detailed', init);
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="canon"');
      expect(r.text).not.toMatch(/jobs_queued/);
    }
    const ok = await get(srv.url, '/health/detailed', bearer(TOKEN));
    expect(ok.status).toBe(200);
    expect(ok.json()).toMatchObject({
      jobs_queued: { total: 0 },
      jobs_processing: { count: 0 },
      stuck_count: 0,
      dead_last_24h: 1,
      runtime_version: 'canon-1',
      status: 'WARNING',
    });
  });

  it('/dead-jobs takes the command filters as query parameters, behind the token', async () => {
    expect((await get(srv.url, '/dead-jobs')).status).toBe(401);
    const r = await get(srv.url, '/dead-jobs?type=protect&since_hours=1&limit=5', bearer(TOKEN));
    expect(r.status).toBe(200);
    expect(r.json().summary).toEqual({ total_dead: 1, by_type: { protect: 1 }, by_reason: { handler_error: 1 } });
    expect(r.json().jobs[0]).toMatchObject({ entity_id: 'perm-1', reason: 'handler_error' });
    for (const [q, msg] of [
      ['?limit=0', /limit must be between 1 and 1000/],
      ['?reason=boom', /reason must be one of/],
      ['?type=nosuch', /unknown job type "nosuch"/],
      ['?bogus=1', /unknown query parameter "bogus"/],
    ] as const) {
      const bad = await get(srv.url, `/dead-jobs${q}`, bearer(TOKEN));
      expect(bad.status, q).toBe(400);
      expect(bad.json().error).toMatch(msg);
    }
  });

  it('unknown paths are 404 and other methods 405', async () => {
    expect((await get(srv.url, '/nope')).status).toBe(404);
    const p = await get(srv.url, '/health', { method: 'POST' });
    expect(p.status).toBe(405);
    expect(p.headers.get('allow')).toBe('GET, HEAD');
  });

  it('/metrics: the gauges, run counters and histograms pass promtool check metrics', async () => {
    const first = await get(srv.url, '/metrics');
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const line of [
      'canon_up 1',
      'canon_jobs_dead_last_24h 1',
      'canon_jobs_stuck 0',
      'canon_core_trigger_enabled 1',
      'canon_event_to_job_gap{lane="decision"} 0',
      'canon_runtime_info{version="canon-1"} 1',
    ]) {
      expect(first.text).toContain(line);
    }
    expect(first.text).toMatch(/canon_status_derived_read_latency_seconds_count 1\n/);
    expect(first.text).toMatch(/canon_provenance_verification_latency_seconds_count 1\n/);
    // runs finished after the server started are counted once each, with their durations
    await doc(db, 'ok-2');
    const r = await canon(['work', '--once', '--pipeline', FAST], { url: db.url, env: env() });
    expect(r.exitCode).toBe(0);
    const runs = (
      await db.pool.query(`select type, count(*)::int as n from canon.job_runs where entity_id = 'ok-2' group by 1`)
    ).rows;
    const want = runs.map((x) => `canon_job_runs_total{type="${x.type}",status="succeeded"} ${x.n}\n`);
    expect(want).toHaveLength(4); // decide, protect, tsa, anchor
    const body = await waitFor(
      async () => {
        const m = await get(srv.url, '/metrics');
        return want.every((w) => m.text.includes(w)) && m.text;
      },
      { what: 'every run of ok-2 counted', timeout: 30_000, interval: 500 },
    ).catch(async (e) => {
      const m = await get(srv.url, '/metrics');
      throw new Error(
        `${e.message}: want ${want.join('')} got ${m.text
          .split('\n')
          .filter((l) => l.startsWith('canon_job_runs_total'))
          .join('; ')}`,
      );
    });
    expect(body).not.toMatch(/canon_job_runs_total\{[^}]*status="failed"\}/);
    expect(body).toMatch(/canon_job_duration_seconds_count\{type="protect"\} 1\n/);
    // every metric the alert rules and the Grafana dashboard use is one this server exposes
    const exposed = new Set([...body.matchAll(/^# TYPE (\w+) /gm)].map((m) => m[1]));
    const exprs = [
      ...[
        ...fs.readFileSync(path.join(root, 'deploy/prometheus/alerts.yml'), 'utf8').matchAll(/^\s+expr: (.*)$/gm),
      ].map((m) => m[1]),
      ...JSON.parse(fs.readFileSync(path.join(root, 'deploy/grafana/canon-dashboard.json'), 'utf8')).panels.flatMap(
        (p: { targets: { expr: string }[] }) => p.targets.map((t) => t.expr),
      ),
    ];
    const used = exprs.flatMap((e) =>
      [...e.matchAll(/\bcanon_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, '')),
    );
    expect(used.length).toBeGreaterThan(20);
    for (const n of new Set(used)) expect(exposed.has(n), n).toBe(true);
    if (needPromtool('promtool check metrics')) {
      const p = await execa('promtool', ['check', 'metrics'], { input: body, reject: false });
      expect(p.exitCode, p.stdout + p.stderr).toBe(0);
    }
  });

  it('without a token configured the detailed endpoints always answer 401', async () => {
    const s = await serve(db.url, [], { CANON_SERVE_TOKEN: '' });
    try {
      const r = await get(s.url, '/health/detailed', bearer(TOKEN));
      expect(r.status).toBe(401);
      expect(r.json().error).toMatch(/no token configured/);
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });

  it('keeps serving while the database is down: /health 503 critical, canon_up 0', async () => {
    const s = await serve('postgres://canon:pw@127.0.0.1:9/canon', ['--token-file', writeToken(TOKEN)]);
    try {
      const h = await get(s.url, '/health');
      expect(h.status).toBe(503);
      expect(h.json()).toMatchObject({ status: 'critical', error: 'database unreachable' });
      expect((await get(s.url, '/metrics')).text).toContain('canon_up 0');
      expect((await get(s.url, '/health/detailed', bearer(TOKEN))).status).toBe(503);
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });

  it('refuses bad options and a busy port with one line', async () => {
    const port = new URL(srv.url).port;
    const busy = await canon(['serve', '--port', port], { url: db.url });
    expect(busy.exitCode).toBe(1);
    expect(oneLineError(busy)).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use`));
    for (const [args, e, msg] of [
      [['serve', '--port', '70000'], {}, /--port must be between 0 and 65535/],
      [['serve', '--token-file', writeToken('short')], {}, /must be at least 16 characters/],
      [['serve', '--token-file', '/nonexistent/token'], {}, /cannot read --token-file \/nonexistent\/token: ENOENT/],
      [
        ['serve'],
        { CANON_SERVE_TOKEN: 'has space in it 0123456789' },
        /CANON_SERVE_TOKEN must be at least 16 characters without spaces/,
      ],
    ] as const) {
      const r = await canon([...args], { url: db.url, env: e });
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(oneLineError(r)).toMatch(msg);
    }
  });
});

describe('Prometheus rules (deploy/prometheus)', () => {
  const dir = path.join(root, 'deploy/prometheus');
  it('name the same alerts as canon alerts, each with a runbook that exists', () => {
    const yml = fs.readFileSync(path.join(dir, 'alerts.yml'), 'utf8');
    const names = new Set([...yml.matchAll(/- alert: (\w+)/g)].map((m) => m[1]));
    for (const r of RULES) {
      expect(names.has(r.name), r.name).toBe(true);
      expect(fs.existsSync(path.join(root, r.runbook)), r.runbook).toBe(true);
    }
    for (const m of yml.matchAll(/runbook: (\S+)/g)) expect(fs.existsSync(path.join(root, m[1])), m[1]).toBe(true);
  });

  it('pass promtool check rules and promtool test rules', async () => {
    if (!needPromtool('the alert rules')) return;
    const c = await execa('promtool', ['check', 'rules', 'alerts.yml'], { cwd: dir, reject: false });
    expect(c.exitCode, c.stdout + c.stderr).toBe(0);
    const t = await execa('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: dir, reject: false });
    expect(t.exitCode, t.stdout + t.stderr).toBe(0);
  });
});

function writeToken(t: string): string {
  const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'canon-token-')), 'token');
  fs.writeFileSync(f, `${t}\n`, { mode: 0o600 });
  return f;
}
