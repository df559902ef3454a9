// The cryptographic half of a provenance check: does the content hash to the artifact hash,
// does the timestamp token verify, does the inclusion proof lead to the anchored root. This is
// the one place that knows the pipeline's proof format; it delegates to the example pipeline's
// own verifiers (pipelines/example/verify.ts, also used by `canon anchor verify`), so that a
// pipeline with other proofs swaps this module only.
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { checkProof, checkToken } from '../../pipelines/example/verify.js';
import { keyDir, keyId, type TimestampToken } from '../../pipelines/example/tsa.js';
import type { AnchorClaim, TimestampClaim } from './provenance-format.js';

/** The events whose results a provenance file attests, by role. */
export const PROOF_KINDS = {
  content: 'document.created',
  artifact: 'protect.succeeded',
  timestamp: 'tsa.succeeded',
  anchor: 'anchor.succeeded',
} as const;

export interface ProofCheck {
  ok: boolean;
  detail: string;
}

export function contentHash(content: unknown): string | undefined {
  return typeof content === 'string' ? createHash('sha256').update(content, 'utf8').digest('hex') : undefined;
}

// The public keys of the tokens checked so far, parsed, with their key ids (PEM → key). A
// file's tokens are signed by one key or a few, and parsing a PEM key (twice per token in the
// pipeline's verifyToken: once for the key id, once to verify) cost more than the Ed25519
// verification itself (~0.25 of ~0.4 ms a token).
const publicKeys = new Map<string, { key: KeyObject; id: string } | null>();

function publicKey(pem: string): { key: KeyObject; id: string } | null {
  let k = publicKeys.get(pem);
  if (k === undefined) {
    try {
      k = { key: createPublicKey(pem), id: keyId(pem) };
    } catch {
      k = null;
    }
    if (publicKeys.size >= 64) publicKeys.clear();
    publicKeys.set(pem, k);
  }
  return k;
}

/**
 * Everything the pipeline's checkToken checks, with the token's key parsed once: the token
 * covers the hash, key_id is the id of the embedded key, the Ed25519 signature over the
 * token's message (as pipelines/example/tsa.ts signs it) verifies, and the key is in the
 * local keyring (looked up every time). Only an acceptance is taken from here: whatever this
 * does not accept goes to checkToken for the verdict and its wording, so a message format
 * that drifted from tsa.ts's would cost time, never a wrong pass (a signature by the token's
 * key over a message its signer never signed does not verify).
 */
function tokenVerifies(t: TimestampClaim, artifactSha256: string): boolean {
  // the cheap refusals first, so that a token checkToken will refuse anyway costs little more than before
  if (t.hash !== artifactSha256 || !fs.existsSync(path.join(keyDir(), `${t.key_id}.pub.pem`))) return false;
  const k = publicKey(t.public_key);
  if (!k || k.id !== t.key_id) return false;
  try {
    return verify(null, Buffer.from(`canon-tsa-v1|${t.hash}|${t.timestamp}|${t.entity_id}`), k.key, Buffer.from(t.signature, 'base64'));
  } catch {
    return false;
  }
}

/** The token's signature, key id and keyring trust, and that it covers `artifactSha256`. */
export function verifyTimestamp(token: TimestampClaim, artifactSha256: string): ProofCheck {
  const failed = tokenVerifies(token, artifactSha256) ? undefined : checkToken(token as TimestampToken, artifactSha256).find((c) => !c.ok);
  return failed ? { ok: false, detail: failed.detail } : { ok: true, detail: `${token.algorithm} signature by key ${token.key_id} over the artifact hash at ${token.timestamp}` };
}

/** The inclusion proof places H(0x00 || artifact) at leaf_index of a tree of tree_size under root. */
export function verifyAnchor(anchor: AnchorClaim, artifactSha256: string): ProofCheck {
  const c = checkProof({ ...anchor, sha256: artifactSha256 });
  return { ok: c.ok, detail: c.detail };
}
