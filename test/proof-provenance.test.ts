// Provenance on a real Postgres with the real example pipeline (protect → tsa → anchor): a
// report taken while the ledger is sound passes every claim; after a dead job is retried and a
// ledger row is tampered with, the debugger fails exactly the claims those changes touch and
// explains each; bad provenance files get one line and exit 2.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvent } from '../src/ledger.js';
import { canon, createTestDb, oneLineError, waitFor, type TestDb } from './helpers.js';

const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-tsa-'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-prov-'));
const env = { CANON_TSA_KEY_DIR: keyDir };
let db: TestDb;
const tag = randomUUID().slice(0, 8);
const A = `prov-a-${tag}`;
const B = `prov-b-${tag}`;
const C = `prov-c-${tag}`;

const status = async (id: string) => (await db.pool.query('select status from canon.entity_status where entity_id = $1', [id])).rows[0]?.status;
async function workOnce() {
  const r = await canon(['work', '--once', '--log-level', 'warn'], { url: db.url, env });
  expect(r.exitCode, r.stderr).toBe(0);
}

beforeAll(async () => {
  db = await createTestDb('proofprov');
  for (const id of [A, C]) await appendEvent(db.pool, { entityId: id, kind: 'document.created', payload: { content: `contract ${id}` } });
  await workOnce();
  await waitFor(async () => (await status(A)) === 'completed' && (await status(C)) === 'completed', { what: 'A and C completed' });
  // B's protect job dies (a permanent failure, made with the lifecycle functions while no worker runs)
  const w = `test-${randomUUID()}`;
  await appendEvent(db.pool, { entityId: B, kind: 'document.created', payload: { content: `contract ${B}` } });
  const [decide] = (await db.pool.query(`select id from canon.claim_jobs('decision', $1, 10)`, [w])).rows;
  const req = (await db.pool.query(`select position from canon.append_event($1, 'job.protect.required', '{}'::jsonb)`, [B])).rows[0];
  await db.pool.query(`select canon.enqueue_job('protect', $1, '{}'::jsonb, null, $2)`, [B, req.position]);
  await db.pool.query(`select canon.complete_run(id, $1) from canon.job_runs where job_id = $2`, [w, decide.id]);
  const [protect] = (await db.pool.query(`select id from canon.claim_jobs('execution', $1, 10)`, [w])).rows;
  await db.pool.query(`select canon.fail_run(id, $1, 'storage unavailable', true, 'handler_error') from canon.job_runs where job_id = $2`, [w, protect.id]);
  await workOnce(); // the decision after protect.failed
  expect(await status(B)).toBe('failed');
});
afterAll(async () => db.end());

describe('report:provenance and report:debug-provenance', () => {
  const file = path.join(dir, 'prov.json');

  it('writes a file whose every claim passes while nothing has changed', async () => {
    const r = await canon(['report:provenance', A, B, C, '-o', file, '--json'], { url: db.url, env });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ file, entities: 3 });
    const prov = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(Object.keys(prov)).toEqual(['format', 'verification_snapshot_ts', 'generated_by', 'claims_validated']);
    const [a, b] = prov.claims_validated;
    expect(a).toMatchObject({ entity_id: A, status: 'completed', artifact_hash: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
    expect(a.ledger_head.seq).toBeGreaterThanOrEqual(7);
    expect(a.timestamp_signature).toMatchObject({ algorithm: 'ed25519', hash: a.artifact_hash.slice(7) });
    expect(a.anchor.proof).toBeInstanceOf(Array);
    expect(a.runs.map((x: { type: string }) => x.type)).toEqual(expect.arrayContaining(['decide', 'protect', 'tsa', 'anchor']));
    expect(b).toMatchObject({ entity_id: B, status: 'failed', artifact_hash: null, timestamp_signature: null, anchor: null });
    expect(b.runs.some((x: { status: string }) => x.status === 'failed')).toBe(true);

    const d = await canon(['report:debug-provenance', file], { url: db.url, env });
    expect(d.exitCode, d.stdout + d.stderr).toBe(0);
    expect(d.stdout).not.toContain('[FAIL]');
    expect(d.stdout).toContain(`[PASS] entity_id: ${A} - entity exists and status matches (completed)`);
    expect(d.stdout).toMatch(/\[PASS\] anchor: root [0-9a-f]{16}… - inclusion proof verifies/);
  });

  it('after a retry and a tampered row, fails exactly the touched claims with Expected, Actual and Mismatch', async () => {
    // B's dead protect job is retried (a new job of the same type through the gateway, as `jobs retry` does)
    await db.pool.query(`select canon.enqueue_job('protect', $1)`, [B]);
    await workOnce();
    await waitFor(async () => (await status(B)) === 'completed', { what: 'B completed after the retry' });
    // a superuser rewrites A's artifact hash with the triggers bypassed
    const c = await db.pool.connect();
    try {
      await c.query('begin');
      await c.query('set local session_replication_role = replica');
      await c.query(`update canon.events set payload = jsonb_set(payload, '{result,sha256}', to_jsonb(repeat('0', 64)))
                      where entity_id = $1 and kind = 'protect.succeeded'`, [A]);
      await c.query('commit');
    } finally {
      c.release();
    }
    const protectSeq = (await db.pool.query(`select seq from canon.events where entity_id = $1 and kind = 'protect.succeeded'`, [A])).rows[0].seq;

    const r = await canon(['report:debug-provenance', file, '--verbose'], { url: db.url, env });
    expect(r.exitCode, r.stderr).toBe(1);
    const lines = r.stdout.split('\n');
    const fails = lines.filter((l) => l.startsWith('[FAIL]'));
    expect(fails).toEqual([
      expect.stringMatching(new RegExp(`^\\[FAIL\\] ledger_head: ${A} seq \\d+ - hash chain broken at seq ${protectSeq}$`)),
      expect.stringMatching(/^\[FAIL\] artifact_hash: sha256:[0-9a-f]{16}… - hash differs$/),
      `[FAIL] entity_id: ${B} - expected status 'failed', got 'completed'`,
    ]);
    // each FAIL is followed by its three explaining lines
    for (const f of fails) {
      const i = lines.indexOf(f);
      expect(lines[i + 1]).toMatch(/^ {8}Expected: \S/);
      expect(lines[i + 2]).toMatch(/^ {8}Actual: {3}\S/);
      expect(lines[i + 3]).toMatch(/^ {8}Mismatch: \S/);
    }
    const at = (f: string) => lines.slice(lines.indexOf(f) + 1, lines.indexOf(f) + 4).join('\n');
    expect(at(fails[2])).toMatch(/Expected: failed \(from snapshot .*\)\n\s+Actual:\s+completed \(current\)\n\s+Mismatch: status changed after snapshot/);
    expect(at(fails[0])).toMatch(/Mismatch: ledger row edited after snapshot, inside the history the snapshot attested/);
    expect(at(fails[1])).toMatch(/Actual:\s+sha256:0{64} \(protect.succeeded at seq \d+\)\n\s+Mismatch: the ledger's artifact hash changed after snapshot/);
    // B's old runs still exist; its ledger only grew
    expect(lines.some((l) => l.startsWith(`[PASS] ledger_head: ${B} seq`) && /appended since/.test(l))).toBe(true);

    const j = await canon(['report:debug-provenance', file, '--json'], { url: db.url, env });
    expect(j.exitCode).toBe(1);
    const out = JSON.parse(j.stdout);
    expect(out).toMatchObject({ ok: false, failed: 3 });
    expect(out.results.filter((x: { ok: boolean }) => !x.ok).map((x: { claim: string; entity_id: string }) => `${x.claim}:${x.entity_id}`)).toEqual([`ledger_head:${A}`, `artifact_hash:${A}`, `entity_id:${B}`]);

    // a new report refuses to attest the tampered entity, and writes nothing
    const again = path.join(dir, 'again.json');
    const refused = await canon(['report:provenance', A, '-o', again], { url: db.url, env });
    expect(refused.exitCode).toBe(1);
    expect(oneLineError(refused)).toMatch(/not written: .*claim\(s\) do not verify now/);
    expect(fs.existsSync(again)).toBe(false);
  });

  it('refuses bad provenance files with one line naming the problem, exit 2', async () => {
    const good = JSON.parse(fs.readFileSync(file, 'utf8'));
    const write = (name: string, text: string) => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, text);
      return p;
    };
    const variant = (f: (p: typeof good) => void) => {
      const p = structuredClone(good);
      f(p);
      return JSON.stringify(p);
    };
    const cases: [string, string, RegExp][] = [
      ['not-json.json', 'this is not json {', /is not JSON/],
      ['empty.json', '', /is not JSON/],
      ['array.json', '[1, 2]', /is not a provenance file: \(top level\)/],
      ['no-claims.json', variant((p) => delete p.claims_validated), /claims_validated: /],
      ['bad-seq.json', variant((p) => (p.claims_validated[1].ledger_head.seq = '7')), /claims_validated\[1\]\.ledger_head\.seq: /],
      ['bad-hash.json', variant((p) => (p.claims_validated[0].artifact_hash = 'md5:abc')), /claims_validated\[0\]\.artifact_hash: must be "sha256:"/],
      ['bad-ts.json', variant((p) => (p.verification_snapshot_ts = 'yesterday')), /verification_snapshot_ts: must be an ISO 8601 timestamp/],
      ['bad-status.json', variant((p) => (p.claims_validated[2].status = 'done')), /claims_validated\[2\]\.status: /],
      ['unknown.json', variant((p) => (p.claims_validated[2].entity_id = 'no-such-document')), /claims_validated\[2\]\.entity_id: entity no-such-document does not exist/],
    ];
    for (const [name, text, re] of cases) {
      const r = await canon(['report:debug-provenance', write(name, text)], { url: db.url, env });
      expect(r.exitCode, name).toBe(2);
      expect(oneLineError(r), name).toMatch(re);
      expect(r.stdout, name).toBe('');
    }
    const missing = await canon(['report:debug-provenance', path.join(dir, 'nope.json')], { url: db.url });
    expect(missing.exitCode).toBe(2);
    expect(oneLineError(missing)).toMatch(/cannot read .*ENOENT/);
    expect(oneLineError(await canon(['report:debug-provenance', dir], { url: db.url }))).toMatch(/is a directory/);
    const unknown = await canon(['report:provenance', 'no-such-document'], { url: db.url });
    expect(unknown.exitCode).toBe(2);
    expect(oneLineError(unknown)).toMatch(/entity no-such-document does not exist/);
  });
});
