// Makes the database's whitelist agree with the loaded pipeline: its job types are declared
// in canon.job_types (execution lane, through canon.declare_job_type) and its flags created
// with their defaults (an existing flag is never changed: operators own flags once they
// exist). A worker syncs the whole pipeline when it starts; a steering command that names a
// type no worker has declared yet declares that one type (knowJobType).
import path from 'node:path';
import type pg from 'pg';
import { printable } from '../args.js';
import { tx } from '../db/connect.js';
import { usageError } from '../errors.js';
import { ENGINE_SQL } from '../sql/engine.js';
import { JOB_TYPE_DEFAULTS, type JobTypeSpec, type Pipeline } from './define.js';
import { loadPipeline } from './load.js';

/** One type's whitelist entry from its declaration; false when the name is a decision-lane type. */
async function declareJobType(c: pg.ClientBase, p: Pipeline, name: string, t: JobTypeSpec): Promise<boolean> {
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
  return r.rows[0].name !== null;
}

const inDecisionLane = (p: Pipeline, name: string) =>
  usageError(`pipeline ${p.name}: job type "${name}" already exists in the decision lane`);

export async function syncPipeline(pool: pg.Pool, p: Pipeline): Promise<{ types: string[]; flags: string[] }> {
  return tx(pool, async (c) => {
    await c.query(ENGINE_SQL.setActor, [`pipeline:${p.name}`, 'declared by the pipeline module', 'pipeline']);
    const types: string[] = [];
    for (const [name, t] of Object.entries(p.jobTypes)) {
      if (!(await declareJobType(c, p, name, t))) throw inDecisionLane(p, name);
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

/**
 * A job type as the configured pipeline (--pipeline, CANON_PIPELINE, else the example)
 * declares it; a name it does not declare is refused with one line naming the pipeline and
 * its types. For commands that name a type the database does not know yet.
 */
export async function pipelineJobType(
  type: string,
  pipelineOpt?: string,
): Promise<{ pipeline: Pipeline; shown: string; spec: JobTypeSpec }> {
  const { pipeline, file } = await loadPipeline(pipelineOpt);
  const shown = path.relative(process.cwd(), file) || file;
  const spec = pipeline.jobTypes[type];
  if (!spec) {
    const names = Object.keys(pipeline.jobTypes);
    throw usageError(
      `unknown job type "${printable(type)}": the database does not know it and pipeline ${pipeline.name} (${shown}) does not declare it (${names.length ? `it declares ${names.join(', ')}` : 'it declares no job type'}); pass --pipeline PATH or set CANON_PIPELINE for another pipeline`,
    );
  }
  return { pipeline, shown, spec };
}

/**
 * Makes sure the database knows a job type a steering command names. A type in the whitelist
 * is known (nothing is loaded). Otherwise a type the configured pipeline declares is declared
 * now, as its worker will declare it, and the file it came from is returned.
 */
export async function knowJobType(pool: pg.Pool, type: string, pipelineOpt?: string): Promise<string | null> {
  if ((await pool.query(ENGINE_SQL.jobTypeLane, [type])).rowCount) return null;
  const { pipeline, shown, spec } = await pipelineJobType(type, pipelineOpt);
  await tx(pool, async (c) => {
    await c.query(ENGINE_SQL.setActor, [`pipeline:${pipeline.name}`, 'declared by the pipeline module', 'pipeline']);
    if (!(await declareJobType(c, pipeline, type, spec))) throw inDecisionLane(pipeline, type);
  });
  return shown;
}
