// The example pipeline's proofs, made in bulk: time-stamp tokens signed with the local TSA key
// (loaded once, not per token as the handler does) at the time the story says the tsa job ran,
// and Merkle inclusion proofs for a whole anchor batch from one pass over the tree's levels
// (the handler's recursive PATH recomputes subtrees for every leaf: fine for one document, too
// slow for 100,000). Both are checked against the pipeline's own verifiers in the tests.
import { sign } from 'node:crypto';
import { leafHash, nodeHash } from '../../pipelines/example/merkle.js';
import { loadKey, type TimestampToken } from '../../pipelines/example/tsa.js';

/** The token the tsa handler would have issued at `timestamp` (message format of pipelines/example/tsa.ts). */
export function tokenSigner(): (hash: string, entityId: string, timestamp: string) => TimestampToken {
  const k = loadKey();
  return (hash, entity_id, timestamp) => {
    const signature = sign(null, Buffer.from(`canon-tsa-v1|${hash}|${timestamp}|${entity_id}`), k.privateKey).toString('base64');
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
