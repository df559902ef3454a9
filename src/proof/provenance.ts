// Taking a provenance report (what the ledger attests about some entities, in one snapshot)
// and checking one against the database now. Both read through `Queryable` so that the report
// can check its own claims inside the snapshot it took them from before writing them. Which
// events hold the proofs, and how a token or an inclusion proof is checked, is the pipeline's
// (its module's `proofs`): without them a report attests the ledger heads and runs only.
import type pg from 'pg';
import { addBreaks, type BreakRow, type ChainBreak, type HeadRow } from '../audit.js';
import { usageError } from '../errors.js';
import { version } from '../paths.js';
import type { PipelineProofs, ProofCheck } from '../pipeline/define.js';
import { PROVENANCE_SQL } from '../sql/provenance.js';
import {
  type EntityClaim,
  PROVENANCE_FORMAT,
  type Provenance,
  provenanceSchema,
  type RunClaim,
} from './provenance-format.js';

type Queryable = pg.Pool | pg.ClientBase;
type Json = Record<string, unknown>;

export type ClaimKind = 'entity_id' | 'ledger_head' | 'run_id' | 'artifact_hash' | 'timestamp_signature' | 'anchor';

export interface ClaimResult {
  claim: ClaimKind;
  entity_id: string;
  /** what the line names: the entity, head, trace id, hash or root */
  subject: string;
  ok: boolean;
  summary: string;
  expected?: string;
  actual?: string;
  mismatch?: string;
}

interface EntityRow {
  entity_id: string;
  head_seq: number;
  head_hash: string | null;
  status: string | null;
  /** when `canon prune` last removed jobs and runs of the entity (null: never) */
  pruned_at: string | null;
}

interface RunRow {
  run_id: number;
  trace_id: string;
  job_id: number;
  type: string;
  attempt: number;
  status: RunClaim['status'];
  entity_id: string;
}

const short = (h: string | null | undefined, n = 16) => (h ? (h.length > n ? `${h.slice(0, n)}…` : h) : '-');

async function entityRows(db: Queryable, ids: string[]): Promise<Map<string, EntityRow>> {
  return new Map(((await db.query(PROVENANCE_SQL.entities, [ids])).rows as EntityRow[]).map((r) => [r.entity_id, r]));
}

interface ProofRow {
  entity_id: string;
  kind: string;
  seq: number;
  payload: Json;
}

/** entity → kind → {seq, result payload} of the latest proof event of each kind */
function byEntityAndKind(rows: ProofRow[]): Map<string, Map<string, { seq: number; payload: Json }>> {
  const out = new Map<string, Map<string, { seq: number; payload: Json }>>();
  for (const r of rows) {
    if (!out.has(r.entity_id)) out.set(r.entity_id, new Map());
    out.get(r.entity_id)!.set(r.kind, { seq: r.seq, payload: r.payload });
  }
  return out;
}

/** The kinds of the proof events to read: none when the pipeline declares no proofs. */
const proofKinds = (proofs: PipelineProofs | undefined): string[] => (proofs ? Object.values(proofs.kinds) : []);

async function proofEvents(
  db: Queryable,
  ids: string[],
  proofs: PipelineProofs | undefined,
): Promise<Map<string, Map<string, { seq: number; payload: Json }>>> {
  if (!proofs) return new Map();
  return byEntityAndKind((await db.query(PROVENANCE_SQL.proofEvents, [ids, proofKinds(proofs)])).rows);
}

const resultOf = (ev: { payload: Json } | undefined) => (ev?.payload?.result ?? undefined) as Json | undefined;

function pick<T extends string>(o: Json | undefined, keys: readonly T[]): Record<T, unknown> | null {
  if (!o) return null;
  return Object.fromEntries(keys.map((k) => [k, o[k]])) as Record<T, unknown>;
}

/** Reads the claims for `ids` in the caller's snapshot. Unknown entities are a usage error. */
export async function takeProvenance(
  db: Queryable,
  ids: string[],
  proofs: PipelineProofs | undefined,
): Promise<Provenance> {
  const unique = [...new Set(ids)];
  const ts = (await db.query(PROVENANCE_SQL.snapshotTime)).rows[0].ts as string;
  const entities = await entityRows(db, unique);
  const missing = unique.find((id) => !entities.has(id));
  if (missing) throw usageError(`entity ${missing} does not exist in this database`);
  const runs = (await db.query(PROVENANCE_SQL.runsOfEntities, [unique])).rows as RunRow[];
  const events = await proofEvents(db, unique, proofs);
  const kinds = proofs?.kinds;
  const claims: EntityClaim[] = unique.map((id) => {
    const e = entities.get(id)!;
    const p = events.get(id);
    const of = (kind: string | undefined) => (kind ? resultOf(p?.get(kind)) : undefined);
    const artifact = of(kinds?.artifact)?.sha256;
    return {
      entity_id: id,
      status: (e.status ?? 'pending') as EntityClaim['status'],
      ledger_head: { seq: e.head_seq, hash: e.head_hash },
      runs: runs.filter((r) => r.entity_id === id).map(({ entity_id: _e, ...r }) => r),
      artifact_hash: typeof artifact === 'string' ? `sha256:${artifact}` : null,
      timestamp_signature: pick(of(kinds?.timestamp), [
        'hash',
        'signature',
        'key_id',
        'algorithm',
        'timestamp',
        'entity_id',
        'public_key',
      ] as const) as EntityClaim['timestamp_signature'],
      anchor: pick(of(kinds?.anchor), [
        'root',
        'leaf_hash',
        'leaf_index',
        'tree_size',
        'proof',
      ] as const) as EntityClaim['anchor'],
    };
  });
  const parsed = provenanceSchema.safeParse({
    format: PROVENANCE_FORMAT,
    verification_snapshot_ts: ts,
    generated_by: `canon ${version}`,
    claims_validated: claims,
  });
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw usageError(`the ledger's proof events do not have the provenance format (${i.path.join('.')}: ${i.message})`);
  }
  return parsed.data;
}

const PROBLEM_TEXT: Record<ChainBreak['problem'], string> = {
  seq_gap: 'seq out of order (a row removed or renumbered)',
  prev_hash_mismatch: 'prev_hash does not name the previous event',
  hash_mismatch: 'the row does not hash to its stored hash',
  head_mismatch: 'the entity head does not name its last event',
};

/** Checks every claim against the database now (in the caller's snapshot), with one statement. */
export async function checkProvenance(
  db: Queryable,
  prov: Provenance,
  proofs: PipelineProofs | undefined,
): Promise<ClaimResult[]> {
  const claims = prov.claims_validated;
  const ids = [...new Set(claims.map((c) => c.entity_id))];
  const traces = claims.flatMap((c) => c.runs.map((r) => r.trace_id));
  const pending = db.query(PROVENANCE_SQL.check, [
    ids,
    ids.length + 1,
    null,
    null,
    claims.map((c) => c.entity_id),
    claims.map((c) => c.ledger_head.seq),
    traces,
    proofKinds(proofs),
  ]);
  // The token and inclusion proof checks need only the file: on a client the statement is
  // already sent, so they run while Postgres works.
  let offline: OfflineChecks[];
  try {
    offline = claims.map((c) => checkOffline(c, proofs));
  } catch (e) {
    await pending.catch(() => undefined);
    throw e;
  }
  const read = (await pending).rows[0] as {
    entities: EntityRow[];
    hashes_at: { entity_id: string; seq: number; hash: string }[];
    runs: RunRow[];
    proofs: ProofRow[];
    breaks: BreakRow[];
    heads: HeadRow[];
  };
  const entities = new Map(read.entities.map((r) => [r.entity_id, r]));
  const unknown = claims.findIndex((c) => !entities.has(c.entity_id));
  if (unknown >= 0)
    throw usageError(
      `claims_validated[${unknown}].entity_id: entity ${claims[unknown].entity_id} does not exist in this database`,
    );
  const heads = new Map(read.hashes_at.map((h) => [`${h.seq} ${h.entity_id}`, h.hash]));
  const runs = new Map(read.runs.map((r) => [r.trace_id, r]));
  const events = byEntityAndKind(read.proofs);
  const breaks = new Map<string, ChainBreak>();
  for (const b of addBreaks([], read.breaks, read.heads)) if (!breaks.has(b.entity_id)) breaks.set(b.entity_id, b);
  const snap = `(from snapshot ${prov.verification_snapshot_ts})`;
  const out: ClaimResult[] = [];
  for (const [i, c] of claims.entries()) {
    const e = entities.get(c.entity_id)!;
    out.push(checkStatus(c, e, snap));
    out.push(checkHead(c, e, heads.get(`${c.ledger_head.seq} ${c.entity_id}`), breaks.get(c.entity_id), snap));
    for (const r of c.runs)
      out.push(checkRun(c.entity_id, r, runs.get(r.trace_id), snap, prunedSince(e, prov.verification_snapshot_ts)));
    out.push(...checkProofs(c, events.get(c.entity_id), offline[i], proofs, snap));
  }
  return out;
}

function checkStatus(c: EntityClaim, e: EntityRow, snap: string): ClaimResult {
  const base = { claim: 'entity_id' as const, entity_id: c.entity_id, subject: c.entity_id };
  if (e.status === c.status) return { ...base, ok: true, summary: `entity exists and status matches (${c.status})` };
  return {
    ...base,
    ok: false,
    summary: `expected status '${c.status}', got '${e.status ?? 'none'}'`,
    expected: `${c.status} ${snap}`,
    actual: `${e.status ?? 'no status row'} (current)`,
    mismatch: 'status changed after snapshot',
  };
}

function checkHead(
  c: EntityClaim,
  e: EntityRow,
  storedAtSeq: string | undefined,
  brk: ChainBreak | undefined,
  snap: string,
): ClaimResult {
  const { seq, hash } = c.ledger_head;
  const base = { claim: 'ledger_head' as const, entity_id: c.entity_id, subject: `${c.entity_id} seq ${seq}` };
  const expected = `seq ${seq} hash ${short(hash)} ${snap}`;
  if (seq > 0 && storedAtSeq === undefined) {
    return {
      ...base,
      ok: false,
      summary: 'event not found',
      expected,
      actual: `the ledger of ${c.entity_id} ends at seq ${e.head_seq}`,
      mismatch: 'ledger rows removed after snapshot',
    };
  }
  if (seq > 0 && storedAtSeq !== hash) {
    return {
      ...base,
      ok: false,
      summary: 'hash differs',
      expected,
      actual: `seq ${seq} hash ${short(storedAtSeq)} (current)`,
      mismatch: 'ledger row rewritten after snapshot',
    };
  }
  if (brk) {
    const where = brk.seq <= seq ? 'inside the history the snapshot attested' : 'after the snapshot head';
    return {
      ...base,
      ok: false,
      summary: `hash chain broken at seq ${brk.seq}`,
      expected: `seq 1..${seq} hash to ${short(hash)} ${snap}`,
      actual: `seq ${brk.seq}: ${PROBLEM_TEXT[brk.problem]}${brk.expected_hash ? ` (recomputed ${short(brk.expected_hash)}, stored ${short(brk.actual_hash)})` : ''}`,
      mismatch: `ledger row edited after snapshot, ${where}`,
    };
  }
  const grown = e.head_seq > seq ? `; ${e.head_seq - seq} event(s) appended since` : '';
  return { ...base, ok: true, summary: `hash matches and the chain verifies${grown}` };
}

/** When the entity's finished work was pruned after the report's snapshot: its claimed runs may be gone by retention. */
const prunedSince = (e: EntityRow, snapshotTs: string) =>
  e.pruned_at !== null && Date.parse(e.pruned_at) > Date.parse(snapshotTs) ? e.pruned_at : undefined;

function checkRun(
  entityId: string,
  r: RunClaim,
  now: RunRow | undefined,
  snap: string,
  prunedAt: string | undefined,
): ClaimResult {
  const base = { claim: 'run_id' as const, entity_id: entityId, subject: r.trace_id };
  // canon prune removes only finished runs of settled entities; the ledger keeps what they wrote
  if (!now && prunedAt && r.status !== 'running')
    return {
      ...base,
      ok: true,
      summary: `run pruned at ${prunedAt} (retention: ${r.type} attempt ${r.attempt}, ${r.status})`,
    };
  if (!now)
    return {
      ...base,
      ok: false,
      summary: 'run not found in database',
      expected: `run ${r.run_id} exists ${snap}`,
      actual: 'not found',
      mismatch: 'run deleted after snapshot',
    };
  if (now.run_id !== r.run_id || now.job_id !== r.job_id || now.entity_id !== entityId) {
    return {
      ...base,
      ok: false,
      summary: 'run belongs elsewhere',
      expected: `run ${r.run_id} of job ${r.job_id} on ${entityId} ${snap}`,
      actual: `run ${now.run_id} of job ${now.job_id} on ${now.entity_id}`,
      mismatch: 'run rewritten after snapshot',
    };
  }
  if (now.status !== r.status) {
    return {
      ...base,
      ok: false,
      summary: `expected run status '${r.status}', got '${now.status}'`,
      expected: `${r.status} ${snap}`,
      actual: `${now.status} (current)`,
      mismatch: 'run status changed after snapshot',
    };
  }
  return { ...base, ok: true, summary: `run exists (${r.type} attempt ${r.attempt}, ${r.status})` };
}

interface OfflineChecks {
  timestamp?: ProofCheck;
  anchor?: ProofCheck;
}

const NO_PROOFS: ProofCheck = {
  ok: false,
  detail: 'the pipeline declares no proofs to check it with (its module has no `proofs`; pass --pipeline)',
};

/** The checks of a claim that need no database: its token and its inclusion proof against the claimed artifact hash. */
function checkOffline(c: EntityClaim, proofs: PipelineProofs | undefined): OfflineChecks {
  const claimed = c.artifact_hash?.slice('sha256:'.length);
  const out: OfflineChecks = {};
  if (c.timestamp_signature)
    out.timestamp = !proofs
      ? NO_PROOFS
      : claimed
        ? proofs.verifyTimestamp(c.timestamp_signature, claimed)
        : { ok: false, detail: 'no artifact hash claimed to check the token against' };
  if (c.anchor)
    out.anchor = !proofs
      ? NO_PROOFS
      : claimed
        ? proofs.verifyAnchor(c.anchor, claimed)
        : { ok: false, detail: 'no artifact hash claimed to anchor' };
  return out;
}

function checkProofs(
  c: EntityClaim,
  events: Map<string, { seq: number; payload: Json }> | undefined,
  offline: OfflineChecks,
  proofs: PipelineProofs | undefined,
  snap: string,
): ClaimResult[] {
  const out: ClaimResult[] = [];
  // without the pipeline's proofs nothing names the proof events: every proof claim fails with NO_PROOFS
  const kinds = proofs?.kinds ?? {
    content: 'content event',
    artifact: 'artifact event',
    timestamp: 'timestamp event',
    anchor: 'anchor event',
  };
  const artifactEv = events?.get(kinds.artifact);
  const claimed = c.artifact_hash?.slice('sha256:'.length);
  if (c.artifact_hash && claimed) {
    const base = {
      claim: 'artifact_hash' as const,
      entity_id: c.entity_id,
      subject: `${c.artifact_hash.slice(0, 23)}…`,
    };
    const current = resultOf(artifactEv)?.sha256;
    const content = proofs?.contentHash(events?.get(kinds.content)?.payload?.content);
    if (!proofs)
      out.push({
        ...base,
        ok: false,
        summary: 'cannot be checked',
        expected: `${c.artifact_hash} ${snap}`,
        actual: NO_PROOFS.detail,
        mismatch: 'no proofs to check with',
      });
    else if (typeof current !== 'string')
      out.push({
        ...base,
        ok: false,
        summary: `no ${kinds.artifact} in the ledger`,
        expected: `${c.artifact_hash} ${snap}`,
        actual: 'not found',
        mismatch: 'artifact removed after snapshot',
      });
    else if (current !== claimed)
      out.push({
        ...base,
        ok: false,
        summary: 'hash differs',
        expected: `${c.artifact_hash} ${snap}`,
        actual: `sha256:${current} (${kinds.artifact} at seq ${artifactEv!.seq})`,
        mismatch: "the ledger's artifact hash changed after snapshot",
      });
    else if (content !== claimed)
      out.push({
        ...base,
        ok: false,
        summary: 'content does not hash to the artifact hash',
        expected: c.artifact_hash,
        actual: content ? `sha256:${content} (${kinds.content} content)` : 'no document content',
        mismatch: 'document content changed after snapshot',
      });
    else
      out.push({
        ...base,
        ok: true,
        summary: `matches ${kinds.artifact} (seq ${artifactEv!.seq}) and the document content`,
      });
  }
  if (c.timestamp_signature) {
    const t = c.timestamp_signature;
    const base = {
      claim: 'timestamp_signature' as const,
      entity_id: c.entity_id,
      subject: `key ${short(t.key_id, 12)}`,
    };
    const current = resultOf(events?.get(kinds.timestamp));
    const v = offline.timestamp!;
    if (!v.ok)
      out.push({
        ...base,
        ok: false,
        summary: 'signature invalid',
        expected: `a valid ${t.algorithm} token over the artifact hash ${snap}`,
        actual: v.detail,
        mismatch: 'token does not verify',
      });
    else if (!current || current.signature !== t.signature || current.timestamp !== t.timestamp)
      out.push({
        ...base,
        ok: false,
        summary: 'token differs from the ledger',
        expected: `signature ${short(t.signature)} at ${t.timestamp} ${snap}`,
        actual: current
          ? `signature ${short(String(current.signature))} at ${String(current.timestamp)}`
          : `no ${kinds.timestamp} in the ledger`,
        mismatch: 'timestamp replaced after snapshot',
      });
    else out.push({ ...base, ok: true, summary: v.detail });
  }
  if (c.anchor) {
    const a = c.anchor;
    const base = { claim: 'anchor' as const, entity_id: c.entity_id, subject: `root ${short(a.root)}` };
    const current = resultOf(events?.get(kinds.anchor));
    const v = offline.anchor!;
    const same =
      current &&
      current.root === a.root &&
      current.leaf_hash === a.leaf_hash &&
      current.leaf_index === a.leaf_index &&
      current.tree_size === a.tree_size &&
      JSON.stringify(current.proof) === JSON.stringify(a.proof);
    if (!v.ok)
      out.push({
        ...base,
        ok: false,
        summary: 'proof invalid',
        expected: `leaf ${a.leaf_index} of ${a.tree_size} under root ${short(a.root)} ${snap}`,
        actual: v.detail,
        mismatch: 'inclusion proof does not verify',
      });
    else if (!same)
      out.push({
        ...base,
        ok: false,
        summary: 'anchor differs from the ledger',
        expected: `root ${short(a.root)} leaf ${a.leaf_index} of ${a.tree_size} ${snap}`,
        actual: current
          ? `root ${short(String(current.root))} leaf ${String(current.leaf_index)} of ${String(current.tree_size)}`
          : `no ${kinds.anchor} in the ledger`,
        mismatch: 'anchor replaced after snapshot',
      });
    else out.push({ ...base, ok: true, summary: `inclusion proof verifies (${v.detail})` });
  }
  return out;
}

/** The seed's report lines: [PASS]/[FAIL] claim: subject - summary, and with verbose the three explaining lines. */
export function renderResults(
  results: ClaimResult[],
  verbose: boolean,
  c: { green: (s: string) => string; red: (s: string) => string } = { green: (s) => s, red: (s) => s },
): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${r.ok ? c.green('[PASS]') : c.red('[FAIL]')} ${r.claim}: ${r.subject} - ${r.summary}`);
    if (verbose && !r.ok) {
      lines.push(
        `        Expected: ${r.expected ?? '-'}`,
        `        Actual:   ${r.actual ?? '-'}`,
        `        Mismatch: ${r.mismatch ?? '-'}`,
      );
    }
  }
  return lines.join('\n');
}
