// Merkle trees as in RFC 6962 / RFC 9162: leaves and inner nodes are hashed with different
// one-byte prefixes (0x00, 0x01) so a leaf can never be passed off as a node, and audit
// paths verify with the RFC 9162 §2.1.3.2 algorithm.
import { createHash } from 'node:crypto';

const sha256 = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
export const leafHash = (data: Buffer) => sha256(Buffer.from([0x00]), data);
export const nodeHash = (left: Buffer, right: Buffer) => sha256(Buffer.from([0x01]), left, right);

/** Largest power of two strictly less than n (n >= 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

export function treeHash(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return sha256();
  if (leaves.length === 1) return leafHash(leaves[0]);
  const k = split(leaves.length);
  return nodeHash(treeHash(leaves.slice(0, k)), treeHash(leaves.slice(k)));
}

/** The audit path of leaf m (RFC 6962 §2.1.1 PATH). */
export function inclusionProof(m: number, leaves: Buffer[]): Buffer[] {
  if (leaves.length <= 1) return [];
  const k = split(leaves.length);
  return m < k
    ? [...inclusionProof(m, leaves.slice(0, k)), treeHash(leaves.slice(k))]
    : [...inclusionProof(m - k, leaves.slice(k)), treeHash(leaves.slice(0, k))];
}

/** RFC 9162 §2.1.3.2: does `proof` place `leaf` (already leaf-hashed) at `index` of a tree of `size` with `root`? */
export function verifyInclusion(leaf: Buffer, index: number, size: number, proof: Buffer[], root: Buffer): boolean {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}
