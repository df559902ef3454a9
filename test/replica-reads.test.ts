// Reads from a replica: a primary and its streaming standby (Debian PostgreSQL 15, started by
// test/support/streaming-standby.ts). canon migrates and runs the demo on the primary; then the
// commands that only read answer from the standby given as the read URL, with DATABASE_URL
// pointing at a closed port, so a read that went to the primary would fail. The standby is
// proved to be one (pg_is_in_recovery, a write refused there), its lag is shown by health,
// watch and /metrics, and a command that writes refuses the read URL.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canon, oneLineError, spawnCanon, waitFor } from './helpers.js';
import { type StreamingPair, startStreamingPair } from './support/streaming-standby.js';

pg.types.setTypeParser(20, (v) => Number(v));

const DB = 'canon_replica';
const DOCUMENTS = 12;
// nothing listens here: a command that reached for DATABASE_URL instead of the read URL fails
const NOWHERE = 'postgres://canon:unused@127.0.0.1:9/canon';

let pair: StreamingPair | undefined;
let primaryUrl = '';
let standbyUrl = '';
let primary: pg.Pool;
let standby: pg.Pool;
let scratch = '';

/** Waits until the standby has replayed everything the primary has written so far. */
async function caughtUp(): Promise<void> {
  const lsn = (await primary.query('select pg_current_wal_lsn()::text as lsn')).rows[0].lsn;
  await waitFor(
    async () =>
      (await standby.query('select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [lsn])).rows[0].ok as boolean,
    { what: `the standby to replay up to ${lsn}`, timeout: 60_000 },
  );
}

/** A read command on the standby only: DATABASE_URL points nowhere. */
const onReplica = (args: string[], extra: Record<string, string> = {}) =>
  canon(args, { url: NOWHERE, env: { CANON_READ_URL: standbyUrl, ...extra } });

beforeAll(async () => {
  pair = await startStreamingPair('reads');
  const admin = new pg.Client({ connectionString: pair.primary.url('postgres') });
  await admin.connect();
  await admin.query(`create database ${DB}`);
  await admin.end();
  primaryUrl = pair.primary.url(DB);
  standbyUrl = pair.standby.url(DB);
  primary = new pg.Pool({ connectionString: primaryUrl, max: 2 });
  const migrated = await canon(['migrate'], { url: primaryUrl });
  expect(migrated.exitCode, migrated.stderr).toBe(0);
  const demo = await canon(['demo', '--documents', String(DOCUMENTS), '--flaky-rate', '0', '--json'], {
    url: primaryUrl,
    timeout: 180_000,
  });
  expect(demo.exitCode, demo.stderr).toBe(0);
  standby = new pg.Pool({ connectionString: standbyUrl, max: 2 });
  await caughtUp();
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-replica-'));
}, 300_000);

afterAll(async () => {
  await primary?.end().catch(() => {});
  await standby?.end().catch(() => {});
  await pair?.stop();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

const firstEntity = async () =>
  (await primary.query(`select entity_id from canon.events where kind = 'anchor.succeeded' order by position limit 1`))
    .rows[0].entity_id as string;

describe('reads from a streaming replica', () => {
  it('the read server is a standby: in recovery, refusing writes, with the ledger replayed', async () => {
    expect((await standby.query('select pg_is_in_recovery() as r')).rows[0].r).toBe(true);
    expect((await primary.query('select pg_is_in_recovery() as r')).rows[0].r).toBe(false);
    await expect(standby.query(`select canon.append_event('x-1', 'document.created', '{}'::jsonb)`)).rejects.toThrow(
      /read-only transaction/,
    );
    const count = 'select count(*)::int as n from canon.events';
    expect((await standby.query(count)).rows[0].n).toBe((await primary.query(count)).rows[0].n);
    expect((await primary.query(count)).rows[0].n).toBeGreaterThanOrEqual(DOCUMENTS * 7);
  });

  it('health reads the standby and shows its lag (text, JSON, plugin line)', async () => {
    const j = await onReplica(['health', '--json']);
    expect([0, 1], j.stderr).toContain(j.exitCode);
    const h = JSON.parse(j.stdout);
    expect(h.replica).toMatchObject({ receiver: expect.any(String), replay_behind_bytes: expect.any(Number) });
    expect(h.replica.lag_seconds).toBeGreaterThanOrEqual(0);
    expect(h.throughput.last_1h.succeeded).toBeGreaterThanOrEqual(DOCUMENTS * 3);
    const text = await onReplica(['health']);
    expect(text.stdout).toMatch(/^replica lag {5}\S+ \(standby; \d+ bytes received, not replayed; receiver \w+/m);
    // the same command on the primary has no replica line, and JSON says null
    const p = JSON.parse((await canon(['health', '--json'], { url: primaryUrl })).stdout);
    expect(p.replica).toBeNull();
  });

  it('the lag grows while the standby does not replay, and health, watch and the plugin line show it', async () => {
    await standby.query('select pg_wal_replay_pause()');
    try {
      const entity = `paused-${Date.now()}`;
      await primary.query(`select canon.append_event($1, 'document.created', '{"content":"x"}'::jsonb)`, [entity]);
      // received but not replayed: the standby is behind by bytes, and the lag counts from its last replay
      await waitFor(
        async () => {
          const h = JSON.parse((await onReplica(['health', '--json'])).stdout);
          return h.replica.replay_behind_bytes > 0 && h.replica.lag_seconds > 0 ? h : undefined;
        },
        { what: 'health on the paused standby to show a lag', timeout: 30_000 },
      );
      // the new entity is not on the standby yet: trace says so (exit 2), it is on the primary
      const missing = await onReplica(['trace', entity]);
      expect(missing.exitCode, missing.stdout).toBe(2);
      expect((await canon(['trace', entity], { url: primaryUrl })).exitCode).toBe(0);
      const w = JSON.parse((await onReplica(['watch', '--once', '--json'])).stdout);
      expect(w.database).toMatch(/^read from postgres@127\.0\.0\.1:\d+\/canon_replica$/);
      expect(w.health.replica.lag_seconds).toBeGreaterThan(0);
      const plain = await onReplica(['watch', '--once']);
      expect(plain.stdout).toMatch(/replica lag \d/);
      const plugin = await onReplica(['health']);
      expect(plugin.stdout.split('\n')[0]).toMatch(/replica_lag=\d+(\.\d+)?s/);
    } finally {
      await standby.query('select pg_wal_replay_resume()');
    }
    await caughtUp();
  });

  it('trace, dead-jobs, alerts and export answer from the standby as the primary does', async () => {
    const id = await firstEntity();
    const [rt, pt] = [
      await onReplica(['trace', id, '--json']),
      await canon(['trace', id, '--json'], { url: primaryUrl }),
    ];
    expect(rt.exitCode, rt.stderr).toBe(0);
    expect(JSON.parse(rt.stdout)).toEqual(JSON.parse(pt.stdout));
    const dead = await onReplica(['dead-jobs', '--json']);
    expect([0, 1], dead.stderr).toContain(dead.exitCode);
    expect(JSON.parse(dead.stdout).summary.total_dead).toBe(
      JSON.parse((await canon(['dead-jobs', '--json'], { url: primaryUrl })).stdout).summary.total_dead,
    );
    const alerts = await onReplica(['alerts', '--json']);
    expect([0, 1, 2], alerts.stderr).toContain(alerts.exitCode);
    expect(JSON.parse(alerts.stdout).alerts.length).toBeGreaterThan(0);
    // the same digest from both servers: the standby holds the same ledger
    const out = path.join(scratch, 'ledger.jsonl');
    const re = await onReplica(['export', '--hash', '--out', out, '--json']);
    expect(re.exitCode, re.stderr).toBe(0);
    const pe = await canon(['export', '--hash', '--json'], { url: primaryUrl });
    expect(JSON.parse(re.stdout).digest).toBe(JSON.parse(pe.stdout).digest);
    expect(JSON.parse(re.stdout).events).toBeGreaterThanOrEqual(DOCUMENTS * 7);
  });

  it('the provenance reports read and check on the standby', async () => {
    const id = await firstEntity();
    const file = path.join(scratch, 'prov.json');
    const w = await onReplica(['report:provenance', id, '-o', file, '--json']);
    expect(w.exitCode, w.stderr).toBe(0);
    expect(JSON.parse(w.stdout).claims).toBeGreaterThan(2);
    const d = await onReplica(['report:debug-provenance', file, '--json']);
    expect(d.exitCode, d.stdout).toBe(0);
    expect(JSON.parse(d.stdout)).toMatchObject({ ok: true, failed: 0 });
  });

  it('serve reads the standby: /health answers and /metrics reports the standby and its lag', async () => {
    const proc = spawnCanon(['serve', '--port', '0', '--read-url', standbyUrl], { url: NOWHERE, buffer: false });
    let err = '';
    proc.stderr?.on('data', (d) => (err += d));
    try {
      const base = await waitFor(async () => /serving (http:\/\/127\.0\.0\.1:\d+)/.exec(err)?.[1], {
        what: `serve to listen (stderr: ${err})`,
        timeout: 20_000,
      });
      expect(err).toMatch(/reading from postgres@127\.0\.0\.1:\d+\/canon_replica/);
      expect(err).not.toContain(pair?.primary.password ?? '-');
      const health = await fetch(`${base}/health`);
      expect([200, 503]).toContain(health.status);
      expect((await health.json()).status).toMatch(/^(ok|warning|critical)$/);
      const body = await (await fetch(`${base}/metrics`)).text();
      expect(body).toMatch(/^canon_up 1$/m);
      expect(body).toMatch(/^canon_read_from_standby 1$/m);
      expect(body).toMatch(/^canon_replica_lag_seconds \d+(\.\d+)?$/m);
      expect(body).toMatch(/^canon_replica_replay_behind_bytes \d+$/m);
    } finally {
      proc.kill('SIGTERM');
      await proc;
    }
  });

  it('a command that writes refuses the read URL; with CANON_READ_URL set it writes to DATABASE_URL', async () => {
    const entity = `written-${Date.now()}`;
    const refused = await canon(
      ['--read-url', standbyUrl, 'events', 'append', entity, 'document.created', '--payload', '{"content":"x"}'],
      { url: primaryUrl },
    );
    expect(refused.exitCode).toBe(2);
    expect(oneLineError(refused)).toMatch(
      /--read-url is only for the commands that read \(.*health.*\); canon events append uses DATABASE_URL/,
    );
    expect(refused.stderr).not.toContain(pair?.primary.password ?? '-');
    for (const args of [['work', '--once'], ['migrate'], ['audit', 'verify']]) {
      const r = await canon(['--read-url', standbyUrl, ...args], { url: primaryUrl });
      expect(r.exitCode, args.join(' ')).toBe(2);
    }
    const none = 'select count(*)::int as n from canon.events where entity_id = $1';
    expect((await primary.query(none, [entity])).rows[0].n).toBe(0);
    // the variable is meant for a whole environment: writing commands ignore it
    const ok = await canon(['events', 'append', entity, 'document.created', '--payload', '{"content":"x"}'], {
      url: primaryUrl,
      env: { CANON_READ_URL: standbyUrl },
    });
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect((await primary.query(none, [entity])).rows[0].n).toBe(1);
    await caughtUp();
    const t = await onReplica(['trace', entity, '--json']);
    expect(t.exitCode, t.stderr).toBe(0);
    expect(JSON.parse(t.stdout).counts.events).toBe(1);
  });

  it('a write pointed at the standby through DATABASE_URL is refused in one line, exit 3', async () => {
    const r = await canon(['events', 'append', 'w-1', 'document.created', '--payload', '{"content":"x"}'], {
      url: standbyUrl,
    });
    expect(r.exitCode).toBe(3);
    expect(oneLineError(r)).toMatch(/refused a write \(is DATABASE_URL a standby\?\)/);
  });

  it('a bad read URL is one line naming where it came from', async () => {
    const bad = await canon(['dead-jobs'], { url: primaryUrl, env: { CANON_READ_URL: 'mysql://x@y/z' } });
    expect(bad.exitCode).toBe(3);
    expect(oneLineError(bad)).toMatch(/CANON_READ_URL has scheme "mysql"/);
    const down = await canon(['--read-url', 'postgres://u:secretpw@127.0.0.1:9/canon', 'trace', 'doc-1'], {
      url: primaryUrl,
    });
    expect(down.exitCode).toBe(3);
    expect(oneLineError(down)).toMatch(/connection refused .*check --read-url/);
    expect(down.stderr).not.toContain('secretpw');
  });

  it('the primary stays whole: audit verify and status verify are clean', async () => {
    const a = await canon(['audit', 'verify', '--json'], { url: primaryUrl });
    expect(a.exitCode, a.stdout + a.stderr).toBe(0);
    const s = await canon(['status', 'verify', '--json'], { url: primaryUrl });
    expect(s.exitCode, s.stdout + s.stderr).toBe(0);
  });
});
