// The DecisionAuthority: for one claimed decision job, read the entity's whole history and
// the flags as they apply to it, run the pipeline's pure authority, and for each job it
// requires append `job.<type>.required` and enqueue the job through the gateway — all in
// one transaction with the run's completion, so a required event never exists without its
// job (event_to_job_gap is zero by construction) and a rescued decider cannot commit. The
// locks and the writes are one SQL call each (canon.begin_decision, canon.finish_decision).
import type pg from 'pg';
import { coerceError } from '../errors.js';
import { history, ledgerError, requiredType } from '../ledger.js';
import { type Decision, decisionSchema, doneDecision, type Pipeline, requiredDecision } from '../pipeline/define.js';
import { ENGINE_SQL } from '../sql/engine.js';
import type { ClaimedJob } from './types.js';

export interface DecisionOutcome {
  ok: boolean; // false: fenced (the run was taken away)
  required: string[];
  skipped: string[];
  done: boolean;
}

const RESULT = /^([a-z][a-z0-9_]*)\.(succeeded|failed)$/;

/** Per type: how many times it was required, and how many of those have a result. */
export function requirementCounts(kinds: string[]): Map<string, { required: number; results: number }> {
  const m = new Map<string, { required: number; results: number }>();
  const get = (t: string) => {
    if (!m.has(t)) m.set(t, { required: 0, results: 0 });
    return m.get(t)!;
  };
  for (const k of kinds) {
    const r = requiredType(k);
    if (r) get(r).required++;
    const s = RESULT.exec(k);
    if (s) get(s[1]).results++;
  }
  return m;
}

export async function decide(
  client: pg.PoolClient,
  job: ClaimedJob,
  runId: number,
  workerId: string,
  pipeline: Pipeline,
): Promise<DecisionOutcome> {
  await client.query('begin');
  try {
    // the run's fence and, when it is ours, the entity's row: decisions about one entity are
    // serialised on it, so two deciders never both see "protect not yet required" and both
    // require it (canon.begin_decision)
    const lock = (
      await client.query({ name: 'canon_begin_decision', text: ENGINE_SQL.beginDecision, values: [runId, workerId] })
    ).rows[0];
    if (!lock.owned) {
      await client.query('rollback');
      await client.query(ENGINE_SQL.rejectDecision, [
        runId,
        workerId,
        `decision run no longer owned (job is ${lock.job_status})`,
      ]);
      return { ok: false, required: [], skipped: [], done: false };
    }
    const events = await history(client, job.entity_id);
    const declaredFlags = Object.keys(pipeline.flags ?? {});
    const flagRows = declaredFlags.length
      ? (await client.query(ENGINE_SQL.flagsFor, [job.entity_id, declaredFlags])).rows
      : [];
    const flagValues = new Map<string, boolean>(flagRows.map((r) => [r.name as string, r.on as boolean]));
    const used: Record<string, boolean> = {};
    const flags = {
      isOn(name: string): boolean {
        const v = flagValues.get(name) ?? false;
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
      throw new AuthorityError(
        `authority returned an invalid decision at ${i.path.join('.') || '(root)'}: ${i.message}`,
      );
    }
    const counts = requirementCounts(events.map((e) => e.kind));
    const required: string[] = [];
    const skipped: string[] = [];
    const writes: {
      type: string;
      event_payload: unknown;
      job_payload: unknown;
      dedupe_key: string;
      priority: number;
    }[] = [];
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
    const detail = {
      required,
      skipped,
      done,
      outcome: 'done' in parsed.data ? (parsed.data.outcome ?? null) : null,
      flags: used,
      history_seq: events.length,
    };
    // every write of the decision in one call: the required events and their jobs (through
    // the gateway), what the decision saw, and the run's completion
    let finished: { ok: boolean };
    try {
      finished = (
        await client.query({
          name: 'canon_finish_decision',
          text: ENGINE_SQL.finishDecision,
          values: [runId, workerId, JSON.stringify(writes), JSON.stringify(detail)],
        })
      ).rows[0];
    } catch (e) {
      throw ledgerError(e);
    }
    if (!finished.ok) {
      await client.query('rollback');
      return { ok: false, required: [], skipped: [], done: false };
    }
    await client.query('commit');
    return { ok: true, required, skipped, done };
  } catch (e) {
    await client.query('rollback').catch(() => {});
    throw e;
  }
}

/** Parses with the branch the value claims to be, so errors name the real field. */
function parseDecision(d: unknown) {
  const branch =
    d && typeof d === 'object' && 'required' in d
      ? requiredDecision
      : d && typeof d === 'object' && 'done' in d
        ? doneDecision
        : decisionSchema;
  return branch.safeParse(d) as ReturnType<typeof decisionSchema.safeParse>;
}

/** The authority misbehaved (threw, or returned something invalid): the decision run fails. */
export class AuthorityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthorityError';
  }
}
