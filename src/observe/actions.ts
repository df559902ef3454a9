// Retry and cancel. A retry never revives the dead row: it goes through the gateway and
// makes a new job, so every job keeps at most one result event (the dead one already has its
// `<type>.failed`). For an execution job the retry appends `job.<type>.required` (payload
// retry_of, actor, reason) and enqueues the job with that event as its source in the same
// transaction, exactly as the decider does: event_to_job_gap stays zero, `trace` shows the
// retry in the chain, and the decider counts it as one more outstanding requirement. A
// decision job is retried by enqueueing a new decision about the same source event.
// Cancel ends a queued or running job (a running worker is fenced: its completion is refused
// and recorded) or acknowledges a dead one. Both write a canon.job_actions row.
import type pg from 'pg';
import { actorDefault } from '../args.js';
import { tx } from '../db/connect.js';
import { PG, pgCode, usageError } from '../errors.js';
import { appendEvent, requiredKind } from '../ledger.js';
import { GATEWAY_SQL } from '../sql/gateway.js';
import { JOB_ACTIONS_SQL } from '../sql/jobactions.js';

export type JobAction = 'retry' | 'cancel';

export interface ActionResult {
  job_id: number;
  action: JobAction;
  from_status: string;
  new_job_id?: number;
  event_position?: number;
  at: string;
}

export interface Who {
  actor: string;
  reason?: string;
}

/** Who acts and why, from `--actor` and `-m` (every job action records both). */
export function whoActs(opts: { actor?: string; message?: string }): Who {
  const who = { actor: opts.actor ?? actorDefault(), reason: opts.message };
  if (who.actor.length > 200 || !who.actor.trim()) throw usageError('--actor must be 1 to 200 characters');
  if (who.reason !== undefined && who.reason.length > 2000)
    throw usageError('--message must be at most 2000 characters');
  return who;
}

const CAN = {
  retry: ['failed', 'cancelled'],
  cancel: ['queued', 'running', 'failed'],
} as const;

export async function actOnJob(pool: pg.Pool, jobId: number, action: JobAction, who: Who): Promise<ActionResult> {
  return act(pool, jobId, action, who).catch((e) => {
    // the gateway refuses a type that left the whitelist, or a lane that changed: bad input, not a crash
    const code = pgCode(e);
    if (code === PG.CANON_UNKNOWN_TYPE || code === PG.CANON_GATEWAY)
      throw usageError(
        `job ${jobId} cannot be ${action === 'retry' ? 'retried' : 'cancelled'}: ${(e as Error).message}`,
      );
    throw e;
  });
}

async function act(pool: pg.Pool, jobId: number, action: JobAction, who: Who): Promise<ActionResult> {
  return tx(pool, async (c) => {
    const j = (await c.query(JOB_ACTIONS_SQL.lockJob, [jobId])).rows[0];
    if (!j) throw usageError(`no job ${jobId}: check the id with \`canon dead-jobs\` or \`canon trace <entity_id>\``);
    if (!(CAN[action] as readonly string[]).includes(j.status)) {
      throw usageError(
        `job ${jobId} is ${j.status}: only ${CAN[action].join(' or ')} jobs can be ${action === 'retry' ? 'retried' : 'cancelled'}`,
      );
    }
    const prior = (await c.query(JOB_ACTIONS_SQL.retriedAs, [jobId])).rows[0];
    if (prior) throw usageError(`job ${jobId} was already retried as job ${prior.new_job_id}: act on that one instead`);
    return action === 'retry' ? retry(c, j, who) : cancel(c, j, who);
  });
}

// biome-ignore lint/suspicious/noExplicitAny: the job row as JOB_ACTIONS_SQL reads it, columns used by name
async function retry(c: pg.PoolClient, j: any, who: Who): Promise<ActionResult> {
  let eventPosition: number | undefined;
  let enqueue: unknown[];
  if (j.lane === 'execution') {
    const kind = requiredKind(j.type);
    const ordinal = (await c.query(JOB_ACTIONS_SQL.requiredCount, [j.entity_id, kind])).rows[0].n + 1;
    const dedupeKey = `${j.entity_id}:${j.type}:${ordinal}`;
    const ev = await appendEvent(c, {
      entityId: j.entity_id,
      kind,
      payload: {
        job_type: j.type,
        ordinal,
        dedupe_key: dedupeKey,
        payload: j.payload,
        retry_of: j.id,
        reason: who.reason ?? null,
      },
      correlationId: j.correlation_id,
      causationId: j.source_event_position ?? undefined,
      actor: who.actor,
    });
    eventPosition = ev.position;
    enqueue = [
      j.type,
      j.entity_id,
      JSON.stringify(j.payload),
      dedupeKey,
      ev.position,
      j.correlation_id,
      null,
      j.priority,
      'execution',
    ];
  } else {
    enqueue = [
      j.type,
      j.entity_id,
      JSON.stringify(j.payload),
      null,
      j.source_event_position,
      j.correlation_id,
      null,
      j.priority,
      'decision',
    ];
  }
  const q = (await c.query(GATEWAY_SQL.enqueue, enqueue)).rows[0];
  const rec = (
    await c.query(JOB_ACTIONS_SQL.record, [
      j.id,
      'retry',
      j.status,
      q.job_id,
      eventPosition ?? null,
      who.actor,
      who.reason ?? null,
    ])
  ).rows[0];
  return {
    job_id: j.id,
    action: 'retry',
    from_status: j.status,
    new_job_id: q.job_id,
    event_position: eventPosition,
    at: new Date(rec.at).toISOString(),
  };
}

// biome-ignore lint/suspicious/noExplicitAny: as for retry
async function cancel(c: pg.PoolClient, j: any, who: Who): Promise<ActionResult> {
  const why = `cancelled by ${who.actor}${who.reason ? `: ${who.reason}` : ''}`;
  if (j.status === 'running') await c.query(JOB_ACTIONS_SQL.cancelRun, [j.id, why]);
  // a dead job keeps the error it died of; a live one records who stopped it
  await c.query(JOB_ACTIONS_SQL.cancelJob, [j.id, j.status === 'failed' ? null : why]);
  const rec = (
    await c.query(JOB_ACTIONS_SQL.record, [j.id, 'cancel', j.status, null, null, who.actor, who.reason ?? null])
  ).rows[0];
  return { job_id: j.id, action: 'cancel', from_status: j.status, at: new Date(rec.at).toISOString() };
}
