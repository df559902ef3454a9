// Factories for the steering tests: job types, jobs decided with given flags, and runs driven
// through the real SQL lifecycle (claim_jobs, complete_run, fail_run), as workers do.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';

export const workerId = (role = 'test') => `${role}-${randomUUID()}`;
export const uniq = (prefix: string) => `${prefix}_${randomUUID().slice(0, 8)}`;

export async function jobType(
  pool: pg.Pool,
  name: string,
  o: { threshold?: number; cooldown?: number; maxAttempts?: number } = {},
): Promise<string> {
  await pool.query(
    `insert into canon.job_types (name, lane, max_attempts, backoff_base_seconds, breaker_threshold, breaker_cooldown_seconds)
     values ($1, 'execution', $2, 0, $3, $4)`,
    [name, o.maxAttempts ?? 10, o.threshold ?? 10, o.cooldown ?? 30],
  );
  return name;
}

export async function enqueue(
  pool: pg.Pool,
  type: string,
  flags: Record<string, boolean> = {},
  entity = `doc-${randomUUID()}`,
): Promise<number> {
  return (
    await pool.query(`select job_id from canon.enqueue_job($1, $2, $3::jsonb)`, [
      type,
      entity,
      JSON.stringify({ flags }),
    ])
  ).rows[0].job_id;
}

/** Nothing left queued from an earlier test in the same database. */
export async function clearQueue(pool: pg.Pool): Promise<void> {
  await pool.query(`update canon.jobs set status = 'cancelled', finished_at = now() where status = 'queued'`);
}

export interface Claimed {
  id: number;
  type: string;
  attempts: number;
  run_id: number;
  worker: string;
}

export async function claim(pool: pg.Pool, n = 1, worker = workerId()): Promise<Claimed[]> {
  const rows = (
    await pool.query(`select id, type, attempts, trace_id from canon.claim_jobs('execution', $1, $2)`, [worker, n])
  ).rows;
  const out: Claimed[] = [];
  for (const r of rows) {
    const run = (await pool.query(`select id from canon.job_runs where trace_id = $1`, [r.trace_id])).rows[0];
    out.push({ id: r.id, type: r.type, attempts: r.attempts, run_id: run.id, worker });
  }
  return out;
}

export async function succeed(pool: pg.Pool, c: Claimed): Promise<void> {
  const r = (
    await pool.query(`select ok from canon.complete_run($1, $2, '{}'::jsonb, $3)`, [
      c.run_id,
      c.worker,
      `${c.type}.succeeded`,
    ])
  ).rows[0];
  if (!r.ok) throw new Error(`complete_run refused run ${c.run_id}`);
}

export async function fail(
  pool: pg.Pool,
  c: Claimed,
  o: { permanent?: boolean; reason?: string } = {},
): Promise<string> {
  const r = (
    await pool.query(`select ok, outcome from canon.fail_run($1, $2, 'boom', $3, $4)`, [
      c.run_id,
      c.worker,
      o.permanent ?? false,
      o.reason ?? 'handler_error',
    ])
  ).rows[0];
  if (!r.ok) throw new Error(`fail_run refused run ${c.run_id}`);
  return r.outcome;
}

/** Claims n jobs and ends each run with the given outcome. */
export async function runJobs(pool: pg.Pool, n: number, outcome: 'succeed' | 'fail' | 'dead'): Promise<Claimed[]> {
  const got = await claim(pool, n);
  for (const c of got) {
    if (outcome === 'succeed') await succeed(pool, c);
    else await fail(pool, c, { permanent: outcome === 'dead' });
  }
  return got;
}
