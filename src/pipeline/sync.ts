// Makes the database's whitelist agree with the loaded pipeline: its job types are upserted
// into canon.job_types (execution lane) and its flags created with their defaults (an
// existing flag is never changed: operators own flags once they exist).
import type pg from 'pg';
import { tx } from '../db/connect.js';
import { usageError } from '../errors.js';
import { ENGINE_SQL } from '../sql/engine.js';
import { JOB_TYPE_DEFAULTS, type Pipeline } from './define.js';

export async function syncPipeline(pool: pg.Pool, p: Pipeline): Promise<{ types: string[]; flags: string[] }> {
  return tx(pool, async (c) => {
    await c.query(ENGINE_SQL.setActor, [`pipeline:${p.name}`, 'declared by the pipeline module', 'pipeline']);
    const types: string[] = [];
    for (const [name, t] of Object.entries(p.jobTypes)) {
      const r = await c.query(ENGINE_SQL.upsertJobType, [
        name,
        t.maxAttempts ?? JOB_TYPE_DEFAULTS.maxAttempts,
        t.timeoutSeconds ?? JOB_TYPE_DEFAULTS.timeoutSeconds,
        t.backoff?.baseSeconds ?? JOB_TYPE_DEFAULTS.backoff.baseSeconds,
        t.backoff?.maxSeconds ?? JOB_TYPE_DEFAULTS.backoff.maxSeconds,
        t.breaker?.threshold ?? JOB_TYPE_DEFAULTS.breaker.threshold,
        t.breaker?.cooldownSeconds ?? JOB_TYPE_DEFAULTS.breaker.cooldownSeconds,
        `pipeline:${p.name}`,
      ]);
      if (r.rowCount === 0)
        throw usageError(`pipeline ${p.name}: job type "${name}" already exists in the decision lane`);
      types.push(name);
    }
    const flags: string[] = [];
    for (const [name, f] of Object.entries(p.flags ?? {})) {
      await c.query(ENGINE_SQL.ensureFlag, [name, f.description ?? '', f.default ?? false]);
      flags.push(name);
    }
    return { types, flags };
  });
}
