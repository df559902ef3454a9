// A pipeline module brings its own proofs: with a user's pipeline whose events have other
// names, `canon report:provenance`, `report:debug-provenance` and `anchor verify` read and
// check them through the module's `proofs`, as they do the example pipeline's. A pipeline
// without `proofs` still gets the ledger and run claims; anchor verify and load refuse it.

import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvent } from '../src/ledger.js';
import { canon, createTestDb, oneLineError, root, type TestDb, waitFor } from './helpers.js';

const NOTARY = path.join(root, 'test', 'fixtures', 'notary-pipeline.mjs');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-notary-'));
const env = { CANON_TSA_KEY_DIR: path.join(dir, 'keys') };
const K = `contract-${randomUUID().slice(0, 8)}`;
let db: TestDb;

beforeAll(async () => {
  db = await createTestDb('pipelineproofs');
  await appendEvent(db.pool, { entityId: K, kind: 'contract.signed', payload: { content: `lease ${K}` } });
  await waitFor(
    async () => {
      const r = await canon(['work', '--once', '--pipeline', NOTARY, '--log-level', 'warn'], { url: db.url, env });
      expect(r.exitCode, r.stderr).toBe(0);
      return (
        (await db.pool.query('select status from canon.entity_status where entity_id = $1', [K])).rows[0]?.status ===
        'completed'
      );
    },
    { what: `${K} completed`, timeout: 60_000 },
  );
});
afterAll(async () => db.end());

describe("a user's pipeline with proofs of its own", () => {
  const file = path.join(dir, 'prov.json');

  it('gets a provenance report whose proof claims come from its own events', async () => {
    const w = await canon(['report:provenance', K, '--pipeline', NOTARY, '-o', file], { url: db.url, env });
    expect(w.exitCode, w.stderr).toBe(0);
    const claim = JSON.parse(fs.readFileSync(file, 'utf8')).claims_validated[0];
    const seal = (
      await db.pool.query(
        `select payload->'result'->>'sha256' as h from canon.events where entity_id = $1 and kind = 'seal.succeeded'`,
        [K],
      )
    ).rows[0].h;
    expect(claim.artifact_hash).toBe(`sha256:${seal}`);
    expect(claim.timestamp_signature).toMatchObject({ hash: seal, algorithm: 'ed25519', entity_id: K });
    expect(claim.anchor).toMatchObject({ leaf_index: 0, tree_size: 1, proof: [] });
  });

  it('gets the debugger: every claim passes with its checks, and the proofs fail without them', async () => {
    const d = await canon(['report:debug-provenance', file, '--pipeline', NOTARY, '--json'], { url: db.url, env });
    expect(d.exitCode, d.stdout + d.stderr).toBe(0);
    const out = JSON.parse(d.stdout);
    expect(out.failed).toBe(0);
    expect(out.results.map((r: { claim: string }) => r.claim)).toEqual(
      expect.arrayContaining(['artifact_hash', 'timestamp_signature', 'anchor']),
    );
    expect(out.results.find((r: { claim: string }) => r.claim === 'artifact_hash').summary).toBe(
      'matches seal.succeeded (seq 3) and the document content',
    );
    const bare = await canon(['report:debug-provenance', file, '--pipeline', NOTARY, '--json'], {
      url: db.url,
      env: { ...env, NOTARY_NO_PROOFS: '1' },
    });
    expect(bare.exitCode).toBe(1);
    const failed = JSON.parse(bare.stdout)
      .results.filter((r: { ok: boolean }) => !r.ok)
      .map((r: { claim: string }) => r.claim);
    expect(failed.sort()).toEqual(['anchor', 'artifact_hash', 'timestamp_signature']);
  });

  it('gets canon anchor verify with the checks it declares', async () => {
    const r = await canon(['anchor', 'verify', K, '--pipeline', NOTARY, '--json'], { url: db.url, env });
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.ok).toBe(true);
    expect(out.checks.map((c: { name: string }) => c.name)).toEqual(['seal', 'notary', 'register']);
  });
});

describe('a pipeline without proofs', () => {
  const bare = { ...env, NOTARY_NO_PROOFS: '1' };

  it('gets a report of the ledger head and runs, with no proof claims', async () => {
    const w = await canon(['report:provenance', K, '--pipeline', NOTARY], { url: db.url, env: bare });
    expect(w.exitCode, w.stderr).toBe(0);
    const claim = JSON.parse(w.stdout).claims_validated[0];
    expect(claim).toMatchObject({
      entity_id: K,
      status: 'completed',
      artifact_hash: null,
      timestamp_signature: null,
      anchor: null,
    });
    expect(claim.runs.length).toBeGreaterThanOrEqual(7);
  });

  it('is refused by anchor verify and by canon load, in one line', async () => {
    const a = await canon(['anchor', 'verify', K, '--pipeline', NOTARY], { url: db.url, env: bare });
    expect(a.exitCode).toBe(2);
    expect(oneLineError(a)).toMatch(/pipeline notary declares no proofs to verify/);
    const l = await canon(
      ['load', '--entities', '10', '--jobs', '70', '--runs', '70', '--events', '70', '--pipeline', NOTARY],
      { url: db.url, env },
    );
    expect(l.exitCode).toBe(2);
    expect(oneLineError(l)).toMatch(/example pipeline's story .*has no job type protect, tsa, anchor/);
  });
});
