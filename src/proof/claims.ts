// The cryptographic half of a provenance check: does the content hash to the artifact hash,
// does the timestamp token verify, does the inclusion proof lead to the anchored root. This is
// the one place that knows the pipeline's proof format; it delegates to the example pipeline's
// own verifiers (pipelines/example/verify.ts, also used by `canon anchor verify`), so that a
// pipeline with other proofs swaps this module only.
import { createHash } from 'node:crypto';
import { checkProof, checkToken } from '../../pipelines/example/verify.js';
import type { TimestampToken } from '../../pipelines/example/tsa.js';
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

/** The token's signature, key id and keyring trust, and that it covers `artifactSha256`. */
export function verifyTimestamp(token: TimestampClaim, artifactSha256: string): ProofCheck {
  const failed = checkToken(token as TimestampToken, artifactSha256).find((c) => !c.ok);
  return failed ? { ok: false, detail: failed.detail } : { ok: true, detail: `${token.algorithm} signature by key ${token.key_id} over the artifact hash at ${token.timestamp}` };
}

/** The inclusion proof places H(0x00 || artifact) at leaf_index of a tree of tree_size under root. */
export function verifyAnchor(anchor: AnchorClaim, artifactSha256: string): ProofCheck {
  const c = checkProof({ ...anchor, sha256: artifactSha256 });
  return { ok: c.ok, detail: c.detail };
}
