// The example pipeline's proofs as canon's reports read them (the pipeline module's `proofs`):
// protect.succeeded carries the document's SHA-256, tsa.succeeded an Ed25519 timestamp token
// over it, anchor.succeeded its Merkle inclusion proof. The checks are verify.ts's, the same
// code for the provenance report and `canon anchor verify`.
import type { PipelineProofs } from 'canon';
import { syntheticProofs } from './synthetic.js';
import type { TimestampToken } from './tsa.js';
import { checkProof, checkToken, contentHash, verifyEntity } from './verify.js';

export const proofs: PipelineProofs = {
  kinds: {
    content: 'document.created',
    artifact: 'protect.succeeded',
    timestamp: 'tsa.succeeded',
    anchor: 'anchor.succeeded',
  },
  contentHash,
  verifyTimestamp(token, artifactSha256) {
    const failed = checkToken(token as TimestampToken, artifactSha256).find((c) => !c.ok);
    return failed
      ? { ok: false, detail: failed.detail }
      : {
          ok: true,
          detail: `${token.algorithm} signature by key ${token.key_id} over the artifact hash at ${token.timestamp}`,
        };
  },
  verifyAnchor(anchor, artifactSha256) {
    const c = checkProof({ ...anchor, sha256: artifactSha256 });
    return { ok: c.ok, detail: c.detail };
  },
  verifyEntity: (events) => verifyEntity(events),
  synthetic: syntheticProofs,
};
