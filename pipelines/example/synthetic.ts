// The example pipeline's proofs, made in bulk for `canon load`: time-stamp tokens signed with
// the local TSA key (loaded once, not per token as the handler does) at the time the story
// says the tsa job ran, and Merkle inclusion proofs for a whole anchor batch from one pass over
// the tree's levels (the handler's recursive PATH recomputes subtrees for every leaf: fine for
// one document, too slow for a dataset). Both are checked against the pipeline's own verifiers
// in the tests.
import { sign } from 'node:crypto';
import type { SyntheticProofs } from 'canon';
import { leafHash, nodeHash } from './merkle.js';
import { loadKey, message, type TimestampToken } from './tsa.js';

/** The token the tsa handler would have issued at `timestamp`. */
export function tokenSigner(): (hash: string, entityId: string, timestamp: string) => TimestampToken {
  const k = loadKey();
  return (hash, entity_id, timestamp) => {
    const signature = sign(null, message({ hash, timestamp, entity_id }), k.privateKey).toString('base64');
    return { hash, timestamp, entity_id, key_id: k.keyId, algorithm: 'ed25519', signature, public_key: k.publicPem };
  };
}

/**
 * Root and audit paths of an RFC 6962 tree over `leaves` (raw values, leaf-hashed here). Built
 * bottom-up, an odd node at the end of a level moves up unchanged: that is the same tree as
 * RFC 6962's split at the largest power of two, and each path lists siblings from the leaf up,
 * as RFC 9162's verification consumes them.
 */
export function merkleBatch(leaves: Buffer[]): { root: Buffer; leafHashes: Buffer[]; paths: Buffer[][] } {
  const leafHashes = leaves.map(leafHash);
  const paths: Buffer[][] = leaves.map(() => []);
  let level: Buffer[] = leafHashes;
  let owners: number[][] = leaves.map((_, i) => [i]); // which leaves sit under each node of the level
  while (level.length > 1) {
    const next: Buffer[] = [];
    const nextOwners: number[][] = [];
    for (let i = 0; i < level.length; i += 2) {
      if (i + 1 === level.length) {
        next.push(level[i]);
        nextOwners.push(owners[i]);
        continue;
      }
      for (const leaf of owners[i]) paths[leaf].push(level[i + 1]);
      for (const leaf of owners[i + 1]) paths[leaf].push(level[i]);
      next.push(nodeHash(level[i], level[i + 1]));
      nextOwners.push([...owners[i], ...owners[i + 1]]);
    }
    level = next;
    owners = nextOwners;
  }
  return { root: level[0] ?? leafHash(Buffer.alloc(0)), leafHashes, paths };
}

/** The anchor handler's result for each document of a batch: leaves in entity id order, RFC 6962 hashing. */
export function anchorBatch(batch: { id: string; sha256: string }[]): Map<string, Record<string, unknown>> {
  const sorted = [...batch].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const t = merkleBatch(sorted.map((b) => Buffer.from(b.sha256, 'hex')));
  const root = t.root.toString('hex');
  return new Map(
    sorted.map((b, i) => [
      b.id,
      {
        sha256: b.sha256,
        root,
        leaf_hash: t.leafHashes[i].toString('hex'),
        leaf_index: i,
        tree_size: sorted.length,
        proof: t.paths[i].map((p) => p.toString('hex')),
        algorithm: 'rfc6962-sha256',
      },
    ]),
  );
}

export function syntheticProofs(): SyntheticProofs {
  const sign = tokenSigner();
  return { stamp: (hash, entityId, timestamp) => ({ ...sign(hash, entityId, timestamp) }), anchor: anchorBatch };
}
