// `canon jobs redrive <entity_id>`: the fix for the not-enqueued verdict. It enqueues, through
// the gateway, the jobs the gap rule finds missing for one entity (the rule diagnose and
// health apply, src/sql/diagnose.ts): for each `job.<type>.required` event without its job,
// that job, with the event as its source and the event's dedupe key and payload, as the
// decider would have made it; for the other events no decision job covers, one decision about
// the entity whose source is the newest of them (a decision reads the whole history). Each job
// made is recorded in canon.job_actions. Nothing is appended to the ledger: the events are
// already there, only their jobs are missing.
import type pg from 'pg';
import { tx } from '../db/connect.js';
import { PG, pgCode, usageError } from '../errors.js';
import { requiredType } from '../ledger.js';
import { GATEWAY_SQL } from '../sql/gateway.js';
import { JOB_ACTIONS_SQL } from '../sql/jobactions.js';
import type { Who } from './actions.js';

export interface RedriveJob {
  lane: 'decision' | 'execution';
  type: string;
  /** the event the job is for: its source */
  source_event_position: number;
  source_kind: string;
  dedupe_key: string | null;
  /** set once enqueued (not in a dry run) */
  job_id?: number;
  /** false when an equal job was already queued or running (the gateway returned it) */
  created?: boolean;
  action_id?: number;
}

export interface RedriveResult {
  entity_id: string;
  dry_run: boolean;
  /** events the gap rule found without their job */
  uncovered_events: number[];
  jobs: RedriveJob[];
  actor: string;
  reason: string | null;
}

interface GapRow {
  position: number;
  kind: string;
  payload: { dedupe_key?: unknown; payload?: unknown };
  correlation_id: string;
}

/** The jobs that would cover the entity's gap, in event order (decision last). */
function plan(gap: GapRow[]): (RedriveJob & { payload: unknown; correlation_id: string })[] {
  const jobs: (RedriveJob & { payload: unknown; correlation_id: string })[] = [];
  for (const e of gap) {
    const type = requiredType(e.kind);
    if (!type) continue;
    jobs.push({
      lane: 'execution',
      type,
      source_event_position: Number(e.position),
      source_kind: e.kind,
      dedupe_key: typeof e.payload.dedupe_key === 'string' ? e.payload.dedupe_key : null,
      payload: e.payload.payload ?? {},
      correlation_id: e.correlation_id,
    });
  }
  const undecided = gap.filter((e) => !requiredType(e.kind));
  const newest = undecided.at(-1);
  if (newest)
    jobs.push({
      lane: 'decision',
      type: 'decide',
      source_event_position: Number(newest.position),
      source_kind: newest.kind,
      dedupe_key: null,
      payload: {},
      correlation_id: newest.correlation_id,
    });
  return jobs;
}

export async function redrive(
  pool: pg.Pool,
  entityId: string,
  who: Who,
  opts: { dryRun: boolean },
): Promise<RedriveResult> {
  return tx(pool, async (c) => {
    await c.query(JOB_ACTIONS_SQL.redriveLock, [entityId]);
    if (!(await c.query(JOB_ACTIONS_SQL.entityExists, [entityId])).rows[0].found)
      throw usageError(`no entity "${entityId}" in the ledger: check the id (canon events list ${entityId})`);
    const gap = (await c.query(JOB_ACTIONS_SQL.entityGap, [entityId])).rows as GapRow[];
    const todo = plan(gap);
    if (!todo.length) {
      const d = (await c.query(JOB_ACTIONS_SQL.activeDecision, [entityId])).rows[0];
      throw usageError(
        d
          ? `${entityId} has decision job #${d.id} ${d.status}: it reads every event of the entity, so there is nothing to re-drive (canon diagnose ${entityId})`
          : `every event of ${entityId} has its job: nothing to re-drive (canon diagnose ${entityId})`,
      );
    }
    const result: RedriveResult = {
      entity_id: entityId,
      dry_run: opts.dryRun,
      uncovered_events: gap.map((e) => Number(e.position)),
      jobs: [],
      actor: who.actor,
      reason: who.reason ?? null,
    };
    for (const { payload, correlation_id, ...j } of todo) {
      if (opts.dryRun) {
        result.jobs.push(j);
        continue;
      }
      const q = (
        await c
          .query(GATEWAY_SQL.enqueue, [
            j.type,
            entityId,
            JSON.stringify(payload),
            j.dedupe_key,
            j.source_event_position,
            correlation_id,
            null,
            0,
            j.lane,
          ])
          .catch((e) => {
            // a required event of a type that left the whitelist: bad input, nothing written
            if (pgCode(e) === PG.CANON_UNKNOWN_TYPE || pgCode(e) === PG.CANON_GATEWAY)
              throw usageError(`cannot re-drive event ${j.source_event_position} (${j.source_kind}): ${e.message}`);
            throw e;
          })
      ).rows[0];
      if (!q.created) {
        // an equal job (same dedupe key) was already queued or running: nothing was made
        result.jobs.push({ ...j, job_id: Number(q.job_id), created: false });
        continue;
      }
      const rec = (
        await c.query(JOB_ACTIONS_SQL.record, [
          q.job_id,
          'redrive',
          'not_enqueued',
          q.job_id,
          null,
          who.actor,
          who.reason ?? null,
        ])
      ).rows[0];
      result.jobs.push({ ...j, job_id: Number(q.job_id), created: true, action_id: Number(rec.id) });
    }
    return result;
  });
}
