// Running entities through their pipeline for real, for a pipeline's integration tests: a
// throw-away database is created on a server (serverUrl, else TEST_DATABASE_URL, else the
// embedded server), migrated, the pipeline synced and its flags set, the entities' first
// events appended, and canon's own worker run until every job of theirs has ended. What
// happened (events, jobs, runs, the trace tree, the derived status) is read back, then the
// database is dropped. Nothing here is a mock: it is canon's SQL and canon's worker.
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { friendlyDbError, tx } from '../db/connect.js';
import { embeddedUrl, startEmbedded } from '../db/embedded.js';
import { canonTypes } from '../db/pg-types.js';
import { describeUrl, validateUrl } from '../db/url.js';
import { createLogger } from '../engine/log.js';
import { launchWorker } from '../engine/run.js';
import type { WorkerStats } from '../engine/worker.js';
import { CanonError, EXIT, PG, pgCode, usageError } from '../errors.js';
import { appendEvent, history, type LedgerEvent } from '../ledger.js';
import { migrate, readDefinitionFiles, readMigrationFiles } from '../migrate.js';
import { buildTree, type ChainJob, type ChainRun, loadChain, type Trace } from '../observe/trace.js';
import type { Logger, Pipeline } from '../pipeline/define.js';
import { loadPipeline, validatePipeline } from '../pipeline/load.js';
import { type DerivedStatus, readStatus } from '../proof/status.js';
import { TESTING_SQL } from '../sql/testing.js';
import { changeFlag } from '../steering/flags.js';
import type { EventInput } from './unit.js';

export interface EntityInput {
  id: string;
  /** Appended in order, in one transaction with the other entities' events. */
  events: (EventInput | string)[];
}

export interface RunPipelineOptions<F extends string = string> {
  /**
   * A Postgres server on which the throw-away database is created (the user needs CREATEDB);
   * default TEST_DATABASE_URL, else canon's embedded server (started if needed, left running).
   */
  serverUrl?: string;
  /** Flag values for the run (on or off for every entity); flags not given keep their default. */
  flags?: Partial<Record<F, boolean>>;
  /** Give up when nothing has happened for this many seconds (default 30); `settled` is then false. */
  idleTimeoutSeconds?: number;
  /** Handlers run at once (default 4). */
  concurrency?: number;
  /** The worker's log (default: silent). */
  logger?: Logger;
  /** Keep the database for inspection instead of dropping it. */
  keepDatabase?: boolean;
}

export interface EntityRun {
  id: string;
  /** Derived from its jobs (canon status); null for an entity with no event. */
  status: DerivedStatus | null;
  events: LedgerEvent[];
  /** Every job of the entity, decisions included, oldest first. */
  jobs: ChainJob[];
  runs: ChainRun[];
  /** The chain event → job → run → event as a tree (what `canon trace` prints). */
  trace: Trace;
}

export interface PipelineRun {
  /** The throw-away database's name (dropped unless keepDatabase). */
  database: string;
  /** Every job of the entities ended before the idle timeout. */
  settled: boolean;
  entities: Record<string, EntityRun>;
  stats: WorkerStats;
}

/** Runs the entities through the pipeline on a throw-away database and returns what happened. */
export async function runPipeline<T extends string, F extends string>(
  pipelineOrPath: Pipeline<T, F> | string,
  entities: EntityInput[],
  options: RunPipelineOptions<NoInfer<F>> = {},
): Promise<PipelineRun> {
  const pipeline =
    typeof pipelineOrPath === 'string'
      ? (await loadPipeline(pipelineOrPath)).pipeline
      : validatePipeline(pipelineOrPath, 'pipeline');
  if (entities.length === 0) throw usageError('runPipeline: give at least one entity');
  const server = options.serverUrl ?? process.env.TEST_DATABASE_URL ?? embeddedUrl(await startEmbedded(), 'postgres');
  const bad = validateUrl(server);
  if (bad) throw usageError(bad.replace(/^DATABASE_URL/, 'the server URL'));
  const database = `canon_test_${randomBytes(6).toString('hex')}`;
  await onServer(server, 'create', TESTING_SQL.createDatabase(database, await migratedTemplate(server)));
  try {
    return await runOn(withDatabase(server, database), database, pipeline, entities, options);
  } finally {
    if (!options.keepDatabase) await onServer(server, 'drop', TESTING_SQL.dropDatabase(database));
  }
}

const withDatabase = (server: string, database: string) => {
  const u = new URL(server);
  u.pathname = `/${database}`;
  return u.toString();
};

/**
 * A migrated database to clone, one per server and schema (`canon_testing_tpl_<digest of the
 * migration files>`), so a run costs a copy instead of a migration. It is built under a name of
 * its own and renamed into place, so a run never clones a half-migrated one; two runs that
 * build it at once both succeed, and one of the copies is dropped.
 */
async function migratedTemplate(server: string): Promise<string> {
  const digest = createHash('sha256')
    .update([...readMigrationFiles(), ...readDefinitionFiles()].map((f) => `${f.file}:${f.checksum}`).join('\n'))
    .digest('hex')
    .slice(0, 16);
  const name = `canon_testing_tpl_${digest}`;
  if (await onServer(server, 'create', TESTING_SQL.databaseExists, [name])) return name;
  const building = `${name}_${randomBytes(4).toString('hex')}`;
  await onServer(server, 'create', TESTING_SQL.createDatabase(building));
  try {
    const c = new pg.Client({ connectionString: withDatabase(server, building) });
    c.on('error', () => {});
    await c.connect();
    try {
      await migrate(c);
    } finally {
      await c.end().catch(() => {});
    }
    await onServer(server, 'create', TESTING_SQL.renameDatabase(building, name));
  } catch (e) {
    await onServer(server, 'drop', TESTING_SQL.dropDatabase(building)).catch(() => {});
    if (!(await onServer(server, 'create', TESTING_SQL.databaseExists, [name]))) throw e;
  }
  return name;
}

async function runOn(
  url: string,
  database: string,
  pipeline: Pipeline,
  entities: EntityInput[],
  options: RunPipelineOptions,
): Promise<PipelineRun> {
  const pool = new pg.Pool({ connectionString: url, max: 2, types: canonTypes, application_name: 'canon testing' });
  pool.on('error', () => {});
  try {
    const ids = entities.map((e) => e.id);
    const { worker, done } = await launchWorker(url, pipeline, undefined, {
      lanes: ['decision', 'execution'],
      role: 'test',
      log: options.logger ?? createLogger({ level: 'silent' }),
      handleSignals: false,
      concurrency: options.concurrency,
      pollMs: 100,
      graceMs: 1000,
    });
    let settled = false;
    try {
      // the flags are set after the worker synced (and so created) them, before any decision reads them
      for (const [name, on] of Object.entries(options.flags ?? {}))
        await changeFlag(pool, name, on ? 'enable' : 'disable', { actor: 'canon-testing' });
      await tx(pool, async (t) => {
        for (const e of entities)
          for (const ev of e.events) {
            const input = typeof ev === 'string' ? { kind: ev } : ev;
            await appendEvent(t, { entityId: e.id, kind: input.kind, payload: input.payload, actor: input.actor });
          }
      });
      settled = await untilSettled(pool, ids, (options.idleTimeoutSeconds ?? 30) * 1000);
    } finally {
      worker.stop();
    }
    const stats = await done;
    const out: Record<string, EntityRun> = {};
    for (const id of ids) {
      const chain = await loadChain(pool, id, 'entity');
      out[id] = {
        id,
        status: (await readStatus(pool, id))?.status ?? null,
        events: await history(pool, id),
        jobs: chain.jobs,
        runs: chain.runs,
        trace: buildTree(chain),
      };
    }
    return { database, settled, entities: out, stats };
  } finally {
    await pool.end().catch(() => {});
  }
}

/** Waits until no job of the entities is queued or running; false when nothing changed for idleMs. */
async function untilSettled(pool: pg.Pool, ids: string[], idleMs: number): Promise<boolean> {
  let last = '';
  let changedAt = Date.now();
  for (;;) {
    const p = (await pool.query(TESTING_SQL.progress, [ids])).rows[0];
    if (p.pending === 0) return true;
    const now = `${p.events}/${p.runs}`;
    if (now !== last) {
      last = now;
      changedAt = Date.now();
    } else if (Date.now() - changedAt > idleMs) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * One statement on the server's own database (its maintenance connection); the first row's
 * first value. CREATE DATABASE … TEMPLATE fails while another session copies the same
 * template (two runs at once): that is retried.
 */
async function onServer(server: string, what: string, sql: string, params: unknown[] = []): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    const client = new pg.Client({ connectionString: server, connectionTimeoutMillis: 10_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      const r = await client.query(sql, params);
      return r.rows[0] ? Object.values(r.rows[0])[0] : undefined;
    } catch (e) {
      if (pgCode(e) === PG.OBJECT_IN_USE && attempt < 100) {
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 200));
        continue;
      }
      throw new CanonError(
        `runPipeline: cannot ${what} a throw-away database on ${describeUrl(server)}: ${friendlyDbError(e, server).message}`,
        EXIT.DATABASE,
      );
    } finally {
      await client.end().catch(() => {});
    }
  }
}
