// Provenance on a real Postgres with the real example pipeline (protect → tsa → anchor): a
// report taken while the ledger is sound passes every claim; after a dead job is retried and a
// ledger row is tampered with, the debugger fails exactly the claims those changes touch and
// explains each; bad provenance files get one line and exit 2.

import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proofs } from '../pipelines/example/proofs.js';
import { stamp } from '../pipelines/example/tsa.js';
import { checkToken } from '../pipelines/example/verify.js';
import { verifyChains } from '../src/audit.js';
import { appendEvent } from '../src/ledger.js';
import { checkProvenance, takeProvenance } from '../src/proof/provenance.js';
import { inSnapshot } from '../src/proof/snapshot.js';
import { canon, createTestDb, oneLineError, type TestDb, waitFor } from './helpers.js';

const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-tsa-'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-prov-'));
const env = { CANON_TSA_KEY_DIR: keyDir };
let db: TestDb;
const tag = randomUUID().slice(0, 8);
const A = `prov-a-${tag}`;
const B = `prov-b-${tag}`;
const C = `prov-c-${tag}`;

const status = async (id: string) =>
  (await db.pool.query('select status from canon.entity_status where entity_id = $1', [id])).rows[0]?.status;
async function workOnce() {
  const r = await canon(['work', '--once', '--log-level', 'warn'], { url: db.url, env });
  expect(r.exitCode, r.stderr).toBe(0);
}

beforeAll(async () => {
  db = await createTestDb('proofprov');
  for (const id of [A, C])
    await appendEvent(db.pool, { entityId: id, kind: 'document.created', payload: { content: `contract ${id}` } });
  await workOnce();
  await waitFor(async () => (await status(A)) === 'completed' && (await status(C)) === 'completed', {
    what: 'A and C completed',
  });
  // B's protect job dies (a permanent failure, made with the lifecycle functions while no worker runs)
  const w = `test-${randomUUID()}`;
  await appendEvent(db.pool, { entityId: B, kind: 'document.created', payload: { content: `contract ${B}` } });
  const [decide] = (await db.pool.query(`select id from canon.claim_jobs('decision', $1, 10)`, [w])).rows;
  const req = (
    await db.pool.query(`select position from canon.append_event($1, 'job.protect.required', '{}'::jsonb)`, [B])
  ).rows[0];
  await db.pool.query(`select canon.enqueue_job('protect', $1, '{}'::jsonb, null, $2)`, [B, req.position]);
  await db.pool.query(`select canon.complete_run(id, $1) from canon.job_runs where job_id = $2`, [w, decide.id]);
  const [protect] = (await db.pool.query(`select id from canon.claim_jobs('execution', $1, 10)`, [w])).rows;
  await db.pool.query(
    `select canon.fail_run(id, $1, 'storage unavailable', true, 'handler_error') from canon.job_runs where job_id = $2`,
    [w, protect.id],
  );
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
    expect(a).toMatchObject({
      entity_id: A,
      status: 'completed',
      artifact_hash: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
    });
    expect(a.ledger_head.seq).toBeGreaterThanOrEqual(7);
    expect(a.timestamp_signature).toMatchObject({ algorithm: 'ed25519', hash: a.artifact_hash.slice(7) });
    expect(a.anchor.proof).toBeInstanceOf(Array);
    expect(a.runs.map((x: { type: string }) => x.type)).toEqual(
      expect.arrayContaining(['decide', 'protect', 'tsa', 'anchor']),
    );
    expect(b).toMatchObject({
      entity_id: B,
      status: 'failed',
      artifact_hash: null,
      timestamp_signature: null,
      anchor: null,
    });
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
      await c.query(
        `update canon.events set payload = jsonb_set(payload, '{result,sha256}', to_jsonb(repeat('0', 64)))
                      where entity_id = $1 and kind = 'protect.succeeded'`,
        [A],
      );
      await c.query('commit');
    } finally {
      c.release();
    }
    const protectSeq = (
      await db.pool.query(`select seq from canon.events where entity_id = $1 and kind = 'protect.succeeded'`, [A])
    ).rows[0].seq;

    const r = await canon(['report:debug-provenance', file, '--verbose'], { url: db.url, env });
    expect(r.exitCode, r.stderr).toBe(1);
    const lines = r.stdout.split('\n');
    const fails = lines.filter((l) => l.startsWith('[FAIL]'));
    expect(fails).toEqual([
      expect.stringMatching(
        new RegExp(`^\\[FAIL\\] ledger_head: ${A} seq \\d+ - hash chain broken at seq ${protectSeq}$`),
      ),
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
    expect(at(fails[2])).toMatch(
      /Expected: failed \(from snapshot .*\)\n\s+Actual:\s+completed \(current\)\n\s+Mismatch: status changed after snapshot/,
    );
    expect(at(fails[0])).toMatch(
      /Mismatch: ledger row edited after snapshot, inside the history the snapshot attested/,
    );
    expect(at(fails[1])).toMatch(
      /Actual:\s+sha256:0{64} \(protect.succeeded at seq \d+\)\n\s+Mismatch: the ledger's artifact hash changed after snapshot/,
    );
    // B's old runs still exist; its ledger only grew
    expect(lines.some((l) => l.startsWith(`[PASS] ledger_head: ${B} seq`) && /appended since/.test(l))).toBe(true);

    const j = await canon(['report:debug-provenance', file, '--json'], { url: db.url, env });
    expect(j.exitCode).toBe(1);
    const out = JSON.parse(j.stdout);
    expect(out).toMatchObject({ ok: false, failed: 3 });
    expect(
      out.results
        .filter((x: { ok: boolean }) => !x.ok)
        .map((x: { claim: string; entity_id: string }) => `${x.claim}:${x.entity_id}`),
    ).toEqual([`ledger_head:${A}`, `artifact_hash:${A}`, `entity_id:${B}`]);

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
      [
        'bad-seq.json',
        variant((p) => (p.claims_validated[1].ledger_head.seq = '7')),
        /claims_validated\[1\]\.ledger_head\.seq: /,
      ],
      [
        'bad-hash.json',
        variant((p) => (p.claims_validated[0].artifact_hash = 'md5:abc')),
        /claims_validated\[0\]\.artifact_hash: must be "sha256:"/,
      ],
      [
        'bad-ts.json',
        variant((p) => (p.verification_snapshot_ts = 'yesterday')),
        /verification_snapshot_ts: must be an ISO 8601 timestamp/,
      ],
      ['bad-status.json', variant((p) => (p.claims_validated[2].status = 'done')), /claims_validated\[2\]\.status: /],
      [
        'unknown.json',
        variant((p) => (p.claims_validated[2].entity_id = 'no-such-document')),
        /claims_validated\[2\]\.entity_id: entity no-such-document does not exist/,
      ],
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

describe('checkProvenance of a batch (one statement for all the entities)', () => {
  it('finds a tampered row in each touched entity of the batch at its seq, with its problem, and a moved or removed run, and passes the rest', async () => {
    const ids = Array.from({ length: 7 }, (_, i) => `prov-batch-${tag}-${i}`);
    for (let s = 1; s <= 5; s++)
      for (const id of ids) await appendEvent(db.pool, { entityId: id, kind: 'note.added', payload: { s, id } });
    // their decision jobs run (claimed and completed with the lifecycle functions), so each entity has runs to claim
    const w = `test-${randomUUID()}`;
    for (let claimed = 1; claimed > 0; ) {
      claimed = (await db.pool.query(`select id from canon.claim_jobs('decision', $1, 100)`, [w])).rowCount ?? 0;
      await db.pool.query(
        `select canon.complete_run(id, $1) from canon.job_runs where worker_id = $1 and status = 'running'`,
        [w],
      );
    }
    const prov = await inSnapshot(db.pool, (c) => takeProvenance(c, ids, proofs));
    for (const cl of prov.claims_validated) expect(cl.runs.length, cl.entity_id).toBeGreaterThan(0);
    const moved = prov.claims_validated[3].runs[0];
    const gone = prov.claims_validated[2].runs[0];
    const c = await db.pool.connect();
    try {
      await c.query('begin');
      await c.query('set local session_replication_role = replica');
      const edit = (set: string, id: string, seq: number) =>
        c.query(`update canon.events set ${set} where entity_id = $1 and seq = $2`, [id, seq]);
      await edit(`payload = payload || '{"tampered": true}'`, ids[1], 3);
      await edit(`prev_hash = sha256(prev_hash)`, ids[2], 2);
      await edit(`hash = sha256(hash)`, ids[4], 2);
      await edit(`seq = 40`, ids[5], 4);
      await c.query(`update canon.entities set head_hash = sha256(head_hash) where id = $1`, [ids[6]]);
      // a run moved to an entity outside the batch (found by its trace id), and a run removed
      await c.query(`update canon.job_runs set entity_id = $1 where trace_id = $2`, [
        `prov-elsewhere-${tag}`,
        moved.trace_id,
      ]);
      await c.query(`delete from canon.job_runs where trace_id = $1`, [gone.trace_id]);
      await c.query('commit');
    } finally {
      c.release();
    }
    const results = await inSnapshot(db.pool, (c) => checkProvenance(c, prov, proofs));
    const heads = new Map(results.filter((r) => r.claim === 'ledger_head').map((r) => [r.entity_id, r]));
    expect(heads.size).toBe(ids.length);
    for (const id of [ids[0], ids[3]])
      expect(heads.get(id)).toMatchObject({ ok: true, summary: 'hash matches and the chain verifies' });
    const broken = (id: string, seq: number, problem: RegExp) => {
      const r = heads.get(id)!;
      expect(r, id).toMatchObject({
        ok: false,
        summary: `hash chain broken at seq ${seq}`,
        mismatch: 'ledger row edited after snapshot, inside the history the snapshot attested',
      });
      expect(r.actual, id).toMatch(problem);
    };
    broken(
      ids[1],
      3,
      /^seq 3: the row does not hash to its stored hash \(recomputed [0-9a-f]{16}…, stored [0-9a-f]{16}…\)$/,
    );
    broken(ids[2], 2, /^seq 2: prev_hash does not name the previous event \(recomputed/);
    broken(ids[4], 2, /^seq 2: the row does not hash to its stored hash/);
    broken(ids[5], 4, /^seq 4: seq out of order \(a row removed or renumbered\)$/);
    broken(ids[6], 5, /^seq 5: the entity head does not name its last event/);
    // the same breaks as the ledger audit of those entities
    const audit = await verifyChains(db.pool, ids);
    expect(audit.breaks.map((b) => `${b.entity_id} ${b.seq} ${b.problem}`)).toEqual([
      `${ids[1]} 3 hash_mismatch`,
      `${ids[2]} 2 prev_hash_mismatch`,
      `${ids[4]} 2 hash_mismatch`,
      `${ids[5]} 4 seq_gap`,
      `${ids[6]} 5 head_mismatch`,
    ]);
    const runs = results.filter((r) => r.claim === 'run_id');
    expect(runs.length).toBe(prov.claims_validated.reduce((n, cl) => n + cl.runs.length, 0));
    expect(runs.filter((r) => !r.ok)).toEqual([
      expect.objectContaining({
        entity_id: ids[2],
        subject: gone.trace_id,
        summary: 'run not found in database',
        mismatch: 'run deleted after snapshot',
      }),
      expect.objectContaining({
        entity_id: ids[3],
        subject: moved.trace_id,
        summary: 'run belongs elsewhere',
        actual: `run ${moved.run_id} of job ${moved.job_id} on prov-elsewhere-${tag}`,
      }),
    ]);
    // nothing else fails: statuses and the (absent) proofs are unchanged
    expect(results.filter((r) => !r.ok && r.claim !== 'ledger_head' && r.claim !== 'run_id')).toEqual([]);
  });
});

describe('timestamp token check', () => {
  it("gives the verdict and the wording of the pipeline's checkToken for valid and broken tokens, on first use of a key and after", () => {
    const before = process.env.CANON_TSA_KEY_DIR;
    process.env.CANON_TSA_KEY_DIR = keyDir;
    try {
      const hash = 'ab'.repeat(32);
      const good = stamp(hash, 'doc-1', keyDir);
      const stranger = stamp(hash, 'doc-1', fs.mkdtempSync(path.join(os.tmpdir(), 'canon-tsa-other-')));
      const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
      const cases: [string, typeof good, string, RegExp][] = [
        ['valid', good, hash, /^ed25519 signature by key [0-9a-f]+ over the artifact hash at /],
        ['other hash', good, 'cd'.repeat(32), /^token covers abababab/],
        ['signature', { ...good, signature: flip(good.signature) }, hash, /^signature does not verify$/],
        [
          'timestamp',
          { ...good, timestamp: new Date(Date.parse(good.timestamp) + 1).toISOString() },
          hash,
          /^signature does not verify$/,
        ],
        ['entity', { ...good, entity_id: 'doc-2' }, hash, /^signature does not verify$/],
        ['key id', { ...good, key_id: stranger.key_id }, hash, /does not name the embedded key$/],
        [
          'swapped key',
          { ...good, public_key: stranger.public_key, key_id: stranger.key_id },
          hash,
          /^signature does not verify$/,
        ],
        ['not a key', { ...good, public_key: 'not a pem' }, hash, /does not name the embedded key$/],
        ['untrusted key', stranger, hash, /is not in the local keyring/],
      ];
      for (let round = 0; round < 2; round++) {
        for (const [name, t, h, re] of cases) {
          const v = proofs.verifyTimestamp(t, h);
          const failed = checkToken(t, h).find((x) => !x.ok);
          expect(v.ok, name).toBe(name === 'valid');
          expect(v.detail, name).toMatch(re);
          if (failed) expect(v.detail, name).toBe(failed.detail);
        }
      }
    } finally {
      if (before === undefined) delete process.env.CANON_TSA_KEY_DIR;
      else process.env.CANON_TSA_KEY_DIR = before;
    }
  });
});
