// The DecisionAuthority: for a batch of claimed decision jobs, read each entity's whole
// history and the flags as they apply to it, run the pipeline's pure authority, and for each
// job it requires append `job.<type>.required` and enqueue the job through the gateway — all
// in one transaction with the runs' completions, so a required event never exists without its
// job (event_to_job_gap is zero by construction) and a rescued decider cannot commit. The
// locks and the reads are one SQL call (canon.begin_decisions), the writes another
// (canon.finish_decisions), and the batch commits once.
import type pg from 'pg';
import { coerceError, isTransientDbError } from '../errors.js';
import { type LedgerEvent, ledgerError, requiredType } from '../ledger.js';
import { type Decision, decisionSchema, doneDecision, type Pipeline, requiredDecision } from '../pipeline/define.js';
import { ENGINE_SQL } from '../sql/engine.js';
import type { ClaimedJob } from './types.js';

export type DecisionResult = 'succeeded' | 'fenced' | 'retry' | 'dead';

export interface DecisionOutcome {
  result: DecisionResult;
  required: string[];
  skipped: string[];
  done: boolean;
  /** why the run failed (the authority threw or returned something invalid) */
  error?: string;
}

/** 'error': this decision's writes failed on their own (a database error); the caller fails its run. */
export type BatchOutcome = DecisionOutcome | { result: 'error'; error: unknown };

export interface DecisionJob {
  job: ClaimedJob;
  runId: number;
}

/** The authority misbehaved (threw, or returned something invalid): its decision run fails. */
export class AuthorityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthorityError';
  }
}

const RESULT = /^([a-z][a-z0-9_]*)\.(succeeded|failed)$/;

/** Per type: how many times it was required, and how many of those have a result. */
export function requirementCounts(kinds: string[]): Map<string, { required: number; results: number }> {
  const m = new Map<string, { required: number; results: number }>();
  const get = (t: string) => {
    let c = m.get(t);
    if (!c) {
      c = { required: 0, results: 0 };
      m.set(t, c);
    }
    return c;
  };
  for (const k of kinds) {
    const r = requiredType(k);
    if (r) get(r).required++;
    const s = RESULT.exec(k);
    if (s) get(s[1]).results++;
  }
  return m;
}

interface RequiredWrite {
  type: string;
  event_payload: unknown;
  job_payload: unknown;
  dedupe_key: string;
  priority: number;
}

interface Plan {
  writes: RequiredWrite[];
  detail: Record<string, unknown>;
  required: string[];
  skipped: string[];
  done: boolean;
}

/** Parses with the branch the value claims to be, so errors name the real field. */
function parseDecision(d: unknown) {
  const claims = (k: string) => d !== null && typeof d === 'object' && k in d;
  const branch = claims('required') ? requiredDecision : claims('done') ? doneDecision : decisionSchema;
  return branch.safeParse(d) as ReturnType<typeof decisionSchema.safeParse>;
}

/**
 * One entity's decision, pure: what the authority requires given its history and flags, less
 * what is already required and still without a result. Throws AuthorityError when the
 * authority throws or returns something invalid.
 */
export function planDecision(
  job: ClaimedJob,
  events: LedgerEvent[],
  flagValues: Record<string, boolean>,
  pipeline: Pipeline,
): Plan {
  const used: Record<string, boolean> = {};
  const flags = {
    isOn(name: string): boolean {
      const v = flagValues[name] ?? false;
      used[name] = v;
      return v;
    },
  };
  let decision: Decision;
  try {
    decision = pipeline.authority({ id: job.entity_id, events }, flags);
  } catch (e) {
    throw new AuthorityError(`authority threw: ${coerceError(e).message}`);
  }
  const parsed = parseDecision(decision);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new AuthorityError(`authority returned an invalid decision at ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  const counts = requirementCounts(events.map((e) => e.kind));
  const required: string[] = [];
  const skipped: string[] = [];
  const writes: RequiredWrite[] = [];
  if ('required' in parsed.data) {
    for (const req of parsed.data.required) {
      if (!(req.type in pipeline.jobTypes))
        throw new AuthorityError(`authority required unknown job type "${req.type}"`);
      const c = counts.get(req.type) ?? { required: 0, results: 0 };
      // Re-deciding on the same history adds nothing: a type already required and still
      // without its result is outstanding, not new.
      if (c.required > c.results || required.includes(req.type)) {
        skipped.push(req.type);
        continue;
      }
      const ordinal = c.required + 1;
      const dedupeKey = `${job.entity_id}:${req.type}:${ordinal}`;
      writes.push({
        type: req.type,
        event_payload: {
          job_type: req.type,
          ordinal,
          dedupe_key: dedupeKey,
          payload: req.payload ?? {},
          flags: used,
          decision_job_id: job.id,
        },
        job_payload: { ...(req.payload ?? {}), flags: used },
        dedupe_key: dedupeKey,
        priority: req.priority ?? 0,
      });
      required.push(req.type);
    }
  }
  const done = 'done' in parsed.data;
  const outcome = 'done' in parsed.data ? (parsed.data.outcome ?? null) : null;
  const detail = { required, skipped, done, outcome, flags: used, history_seq: events.length };
  return { writes, detail, required, skipped, done };
}

interface BeganRow {
  run_id: number;
  owned: boolean;
  job_status: string;
  entity_id: string;
  events: (Omit<LedgerEvent, 'created_at'> & { created_at: string })[] | null;
  flags: Record<string, boolean> | null;
}

/** One transaction for the whole batch. Throws on any database error (the batch rolls back). */
async function decideTogether(
  client: pg.ClientBase,
  batch: DecisionJob[],
  workerId: string,
  pipeline: Pipeline,
): Promise<Map<number, DecisionOutcome>> {
  const out = new Map<number, DecisionOutcome>();
  const byRun = new Map(batch.map((b) => [b.runId, b.job]));
  await client.query('begin');
  try {
    const declared = Object.keys(pipeline.flags ?? {});
    const began = (await client.query(ENGINE_SQL.beginDecisions, [workerId, [...byRun.keys()], declared]))
      .rows as BeganRow[];
    const decisions: (
      | { run_id: number; required: RequiredWrite[]; detail: unknown }
      | { run_id: number; error: string }
    )[] = [];
    const plans = new Map<number, Plan>();
    // a run missing from the answer was lost with its claim in a server crash (run ids are
    // never reissued): its job is queued again and runs on a later claim
    for (const runId of byRun.keys())
      if (!began.some((r) => Number(r.run_id) === runId))
        out.set(runId, { result: 'fenced', required: [], skipped: [], done: false });
    for (const row of began) {
      const runId = Number(row.run_id);
      if (!row.owned) {
        out.set(runId, { result: 'fenced', required: [], skipped: [], done: false });
        continue;
      }
      // created_at arrives as JSON text; the authority gets the Date a row read would give
      const events = (row.events ?? []).map((e) => ({ ...e, created_at: new Date(e.created_at) }));
      try {
        const plan = planDecision(byRun.get(runId)!, events, row.flags ?? {}, pipeline);
        plans.set(runId, plan);
        decisions.push({ run_id: runId, required: plan.writes, detail: plan.detail });
      } catch (e) {
        if (!(e instanceof AuthorityError)) throw e;
        decisions.push({ run_id: runId, error: e.message.slice(0, 4000) });
        out.set(runId, { result: 'retry', required: [], skipped: [], done: false, error: e.message });
      }
    }
    if (decisions.length > 0) {
      let finished: { run_id: number; ok: boolean; outcome: string }[];
      try {
        finished = (await client.query(ENGINE_SQL.finishDecisions, [workerId, JSON.stringify(decisions)])).rows;
      } catch (e) {
        throw ledgerError(e);
      }
      for (const f of finished) {
        const runId = Number(f.run_id);
        const plan = plans.get(runId);
        if (!f.ok) out.set(runId, { result: 'fenced', required: [], skipped: [], done: false });
        else if (plan)
          out.set(runId, { result: 'succeeded', required: plan.required, skipped: plan.skipped, done: plan.done });
        else out.set(runId, { ...out.get(runId)!, result: f.outcome === 'dead' ? 'dead' : 'retry' });
      }
    }
    await client.query('commit');
    return out;
  } catch (e) {
    await client.query('rollback').catch(() => {});
    throw e;
  }
}

/**
 * Decides a batch in one transaction. When the batch's writes fail (a database error that
 * is not transient: not a lost connection, a statement or lock timeout), each decision is tried again in a transaction of its own, so one
 * bad decision cannot hold back the others; the one that still fails is reported with
 * result 'error' for the caller to fail its run.
 */
export async function decideBatch(
  client: pg.ClientBase,
  batch: DecisionJob[],
  workerId: string,
  pipeline: Pipeline,
): Promise<Map<number, BatchOutcome>> {
  try {
    return await decideTogether(client, batch, workerId, pipeline);
  } catch (e) {
    // the caller retries the whole batch: the database, not a decision, was at fault
    if (isTransientDbError(e)) throw e;
    if (batch.length === 1) return new Map([[batch[0].runId, { result: 'error', error: e }]]);
  }
  const out = new Map<number, BatchOutcome>();
  for (const one of batch) {
    try {
      for (const [k, v] of await decideTogether(client, [one], workerId, pipeline)) out.set(k, v);
    } catch (e) {
      if (isTransientDbError(e)) throw e;
      out.set(one.runId, { result: 'error', error: e });
    }
  }
  return out;
}
