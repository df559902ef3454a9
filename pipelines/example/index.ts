// The example pipeline that canon ships: protect → tsa → anchor, as in the seeds.
//   protect  SHA-256 of the document's content
//   tsa      a signed timestamp over that hash (behind the flag D1_RUN_TSA_ENABLED; when the
//            flag is off the authority goes straight to anchor, the seeds' legacy mode)
//   anchor   the hash as a leaf of a Merkle tree over a batch of recently protected documents;
//            the result carries the root and this document's inclusion proof
// Documents start with `document.created {"content": "..."}`. For demos and tests the content
// can ask for a failure: "#poison" always fails (retryable), "#permanent" fails permanently,
// "#hang" never returns (aborted at the timeout), "#flaky" fails its first attempt.
// CANON_EXAMPLE_FLAKY_RATE (0..1) makes tsa fail at random, to show retries.
import {
  definePipeline,
  type Entity,
  type HandlerContext,
  PermanentError,
  PreconditionError,
  RetryableError,
  requiredType,
} from 'canon';
import { inclusionProof, leafHash, treeHash } from './merkle.js';
import { proofs } from './proofs.js';
import { stamp } from './tsa.js';
import { contentHash } from './verify.js';

export const TSA_FLAG = 'D1_RUN_TSA_ENABLED';
export const ANCHOR_BATCH = 64;

const has = (e: Entity, kind: string) => e.events.some((ev) => ev.kind === kind);

/** A step failed for good when its newest event is `<type>.failed`: an operator's retry
 *  appends a new `job.<type>.required`, which puts the step back in play. */
function failedStep(e: Entity): string | undefined {
  const latest = new Map<string, string>();
  for (const ev of e.events) {
    const step = requiredType(ev.kind) ?? /^([a-z][a-z0-9_]*)\.(?:succeeded|failed)$/.exec(ev.kind)?.[1];
    if (step) latest.set(step, ev.kind);
  }
  return [...latest.values()].find((k) => k.endsWith('.failed'));
}
const last = (e: Entity, kind: string) => [...e.events].reverse().find((ev) => ev.kind === kind);

function content(entity: Entity): string {
  const created = entity.events.find((e) => e.kind === 'document.created');
  const c = created?.payload?.content;
  if (typeof c !== 'string') throw new PreconditionError('document.created has no string "content" to protect');
  return c;
}

function failureMode(entity: Entity, attempt: number, signal: AbortSignal): Promise<void> | void {
  const c = content(entity);
  if (c.includes('#poison')) throw new RetryableError('poison document: this handler always fails');
  if (c.includes('#permanent')) throw new PermanentError('document marked #permanent: cannot be protected');
  if (c.includes('#flaky') && attempt === 1) throw new RetryableError('flaky document: first attempt fails');
  if (c.includes('#hang'))
    return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
}

export function protectedHash(entity: Entity): string | undefined {
  const r = last(entity, 'protect.succeeded')?.payload?.result as { sha256?: string } | undefined;
  return r?.sha256;
}

export default definePipeline({
  name: 'example',
  flags: {
    [TSA_FLAG]: { default: true, description: 'run the trusted timestamp step (off: legacy mode, straight to anchor)' },
  },
  jobTypes: {
    protect: { maxAttempts: 5, timeoutSeconds: 30, backoff: { baseSeconds: 0.5, maxSeconds: 30 } },
    tsa: { maxAttempts: 5, timeoutSeconds: 30, backoff: { baseSeconds: 0.5, maxSeconds: 30 } },
    anchor: { maxAttempts: 5, timeoutSeconds: 30, backoff: { baseSeconds: 0.5, maxSeconds: 30 } },
  },

  // Pure: the history and the flags decide the next step; nothing else is read.
  authority(entity, flags) {
    if (!has(entity, 'document.created')) return { done: true };
    if (failedStep(entity)) return { done: true, outcome: 'failed' };
    if (!has(entity, 'protect.succeeded')) return { required: [{ type: 'protect' }] };
    if (flags.isOn(TSA_FLAG) && !has(entity, 'tsa.succeeded')) return { required: [{ type: 'tsa' }] };
    if (!has(entity, 'anchor.succeeded')) return { required: [{ type: 'anchor' }] };
    return { done: true, outcome: 'completed' };
  },

  handlers: {
    async protect(ctx: HandlerContext) {
      await failureMode(ctx.entity, ctx.attempt, ctx.signal);
      const c = content(ctx.entity);
      return { sha256: contentHash(c), bytes: Buffer.byteLength(c) };
    },

    async tsa(ctx: HandlerContext) {
      const hash = protectedHash(ctx.entity);
      if (!hash) throw new PreconditionError('no protect.succeeded result to timestamp');
      const rate = Number(process.env.CANON_EXAMPLE_FLAKY_RATE ?? 0);
      if (rate > 0 && Math.random() < rate) throw new RetryableError('time-stamp authority unavailable (simulated)');
      return stamp(hash, ctx.entity.id);
    },

    async anchor(ctx: HandlerContext) {
      const mine = protectedHash(ctx.entity);
      const protectedAt = last(ctx.entity, 'protect.succeeded')?.created_at;
      if (!mine || !protectedAt) throw new PreconditionError('no protect.succeeded result to anchor');
      // The batch: this document and the documents protected just before it.
      const others = await ctx.query<{ entity_id: string; sha256: string }>(
        `select entity_id, payload->'result'->>'sha256' as sha256
           from canon.events
          where kind = 'protect.succeeded' and created_at <= $1 and entity_id <> $2
          order by created_at desc limit $3`,
        [protectedAt, ctx.entity.id, ANCHOR_BATCH - 1],
      );
      const batch = [
        { entity_id: ctx.entity.id, sha256: mine },
        ...others.filter((o) => /^[0-9a-f]{64}$/.test(o.sha256)),
      ].sort((a, b) => (a.entity_id < b.entity_id ? -1 : a.entity_id > b.entity_id ? 1 : 0));
      const leaves = batch.map((b) => Buffer.from(b.sha256, 'hex'));
      const index = batch.findIndex((b) => b.entity_id === ctx.entity.id);
      return {
        sha256: mine,
        root: treeHash(leaves).toString('hex'),
        leaf_hash: leafHash(leaves[index]).toString('hex'),
        leaf_index: index,
        tree_size: leaves.length,
        proof: inclusionProof(index, leaves).map((p) => p.toString('hex')),
        algorithm: 'rfc6962-sha256',
      };
    },
  },

  // what the provenance report and `canon anchor verify` read and check
  proofs,
});
