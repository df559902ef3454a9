// Offline verification of one document's proof chain: the content hashes to the protected
// hash, the timestamp token is signed by the named key over that hash, and the inclusion
// proof places the hash's leaf under the anchored root. Used by `canon anchor verify` and by
// the provenance debugger.
import { createHash } from 'node:crypto';
import type { EntityCheck as Check, LedgerEvent } from 'canon';
import { leafHash, verifyInclusion } from './merkle.js';
import { type TimestampToken, verifyToken } from './tsa.js';

export type { Check };

/** What protect records: the SHA-256 of the document's content (undefined when it has no string content). */
export function contentHash(content: unknown): string | undefined {
  return typeof content === 'string' ? createHash('sha256').update(content, 'utf8').digest('hex') : undefined;
}

export interface AnchorResult {
  sha256: string;
  root: string;
  leaf_hash: string;
  leaf_index: number;
  tree_size: number;
  proof: string[];
}

export function checkProof(a: AnchorResult): Check {
  try {
    const leaf = leafHash(Buffer.from(a.sha256, 'hex'));
    if (leaf.toString('hex') !== a.leaf_hash)
      return {
        name: 'inclusion_proof',
        ok: false,
        detail: `leaf hash ${a.leaf_hash.slice(0, 16)}… is not H(0x00 || sha256)`,
      };
    const ok = verifyInclusion(
      leaf,
      a.leaf_index,
      a.tree_size,
      a.proof.map((p) => Buffer.from(p, 'hex')),
      Buffer.from(a.root, 'hex'),
    );
    return {
      name: 'inclusion_proof',
      ok,
      detail: ok
        ? `leaf ${a.leaf_index} of ${a.tree_size} under root ${a.root.slice(0, 16)}…`
        : `the proof does not lead to root ${a.root.slice(0, 16)}…`,
    };
  } catch (e) {
    return { name: 'inclusion_proof', ok: false, detail: `malformed proof: ${(e as Error).message}` };
  }
}

export function checkToken(t: TimestampToken, expectedHash: string): Check[] {
  const c = verifyToken(t);
  return [
    {
      name: 'timestamp_hash',
      ok: t.hash === expectedHash,
      detail:
        t.hash === expectedHash
          ? 'token covers the protected hash'
          : `token covers ${String(t.hash).slice(0, 16)}…, not ${expectedHash.slice(0, 16)}…`,
    },
    {
      name: 'timestamp_signature',
      ok: c.signature_valid && c.key_id_matches,
      detail: !c.key_id_matches
        ? `key id ${t.key_id} does not name the embedded key`
        : c.signature_valid
          ? `ed25519 signature by key ${t.key_id} at ${t.timestamp}`
          : 'signature does not verify',
    },
    {
      name: 'timestamp_key_trusted',
      ok: c.key_trusted,
      detail: c.key_trusted
        ? 'key is in the local keyring'
        : `key ${t.key_id} is not in the local keyring (CANON_TSA_KEY_DIR)`,
    },
  ];
}

/** All checks for one entity, from its events alone. */
export function verifyEntity(events: LedgerEvent[], opts: { tsaRequired?: boolean } = {}): Check[] {
  const find = (kind: string) => [...events].reverse().find((e) => e.kind === kind);
  const checks: Check[] = [];
  const created = find('document.created');
  const prot = find('protect.succeeded')?.payload?.result as { sha256?: string } | undefined;
  if (!created || !prot?.sha256)
    return [{ name: 'protected', ok: false, detail: 'no document.created and protect.succeeded events' }];
  const actual = contentHash(created.payload?.content) ?? '';
  checks.push({
    name: 'content_hash',
    ok: actual === prot.sha256,
    detail:
      actual === prot.sha256
        ? `sha256 ${prot.sha256.slice(0, 16)}…`
        : `content hashes to ${actual.slice(0, 16)}…, protect recorded ${prot.sha256.slice(0, 16)}…`,
  });
  const tsa = find('tsa.succeeded')?.payload?.result as TimestampToken | undefined;
  if (tsa) checks.push(...checkToken(tsa, prot.sha256));
  else if (opts.tsaRequired) checks.push({ name: 'timestamp', ok: false, detail: 'no tsa.succeeded event' });
  const anchor = find('anchor.succeeded')?.payload?.result as AnchorResult | undefined;
  if (!anchor) checks.push({ name: 'anchored', ok: false, detail: 'no anchor.succeeded event' });
  else {
    checks.push({
      name: 'anchor_hash',
      ok: anchor.sha256 === prot.sha256,
      detail:
        anchor.sha256 === prot.sha256
          ? 'anchor covers the protected hash'
          : `anchor covers ${String(anchor.sha256).slice(0, 16)}…`,
    });
    checks.push(checkProof(anchor));
  }
  return checks;
}
