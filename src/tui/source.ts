// Where the dashboard gets its data and how it acts. The App only sees this interface, so the
// component tests drive it with fixed fixtures and the command wires it to Postgres. Every
// action is an existing library call (observe/actions for retry and cancel, steering for
// pause, resume and kill), recorded there with who, when and why.
import type pg from 'pg';
import { usageError } from '../errors.js';
import { actOnJob } from '../observe/actions.js';
import { CLI_NAMES, listDeadJobs, parseDeadFilters } from '../observe/deadjobs.js';
import type { Thresholds } from '../observe/thresholds.js';
import type { Who } from '../steering/common.js';
import { changeFlag, killPreview } from '../steering/flags.js';
import { setPaused } from '../steering/pause.js';
import { plural } from './format.js';
import { type Focus, readSnapshot, type WatchSnapshot } from './snapshot.js';

export interface JobRef {
  id: number;
  type: string;
  entity_id: string;
  status: string;
  dead: boolean;
}

export type WatchAction =
  | { kind: 'retry'; job: JobRef }
  | { kind: 'cancel'; job: JobRef }
  | { kind: 'retry-type'; type: string }
  | { kind: 'pause'; type: string; pause: boolean }
  | { kind: 'kill'; flag: string };

/** An action ready to run: what the y/N prompt says (with exact counts) and the call itself. */
export interface Prepared {
  prompt: string;
  run(): Promise<string>;
}

export interface WatchSource {
  snapshot(focus: Focus): Promise<WatchSnapshot>;
  prepare(action: WatchAction): Promise<Prepared>;
}

/** The whole dead set of a type, whatever its age (the bulk retry of `canon jobs retry`). */
const RETRY_ALL = { since_hours: '876000', limit: 10_000 };

/**
 * The dashboard on Postgres: snapshots read `pool`; actions (and the counts their prompts
 * show) go to `primary` when the snapshots come from a replica (--read-url), opened only when
 * the first action is prepared.
 */
export function dbSource(
  reads: pg.Pool,
  t: Thresholds,
  database: string,
  who: Who,
  primary: () => Promise<pg.Pool> = async () => reads,
): WatchSource {
  return {
    snapshot: (focus) => readSnapshot(reads, t, focus, database),
    async prepare(a) {
      const pool = await primary();
      switch (a.kind) {
        case 'retry':
        case 'cancel': {
          const verb = a.kind === 'retry' ? 'retry' : a.job.dead ? 'cancel (acknowledge)' : 'cancel';
          return {
            prompt: `${verb} job #${a.job.id} (${a.job.type}, ${a.job.dead ? 'dead' : a.job.status}, entity ${a.job.entity_id})?`,
            run: async () => {
              const r = await actOnJob(pool, a.job.id, a.kind, who);
              return r.action === 'retry'
                ? `job #${r.job_id} retried as job #${r.new_job_id} by ${who.actor}`
                : `job #${r.job_id} (${r.from_status}) cancelled by ${who.actor}`;
            },
          };
        }
        case 'retry-type': {
          const f = parseDeadFilters(
            { type: a.type, since_hours: RETRY_ALL.since_hours, limit: String(RETRY_ALL.limit) },
            CLI_NAMES,
            { limit: RETRY_ALL.limit, max: RETRY_ALL.limit },
          );
          const dead = await listDeadJobs(pool, f);
          const ids = dead.jobs.map((j) => j.id);
          if (ids.length === 0) throw usageError(`no dead ${a.type} jobs: nothing to retry`);
          const more =
            dead.summary.total_dead > ids.length ? ` (the newest ${ids.length} of ${dead.summary.total_dead})` : '';
          return {
            prompt: `retry ${plural(ids.length, `dead ${a.type} job`)}${more}?`,
            run: async () => {
              let ok = 0;
              const failed: string[] = [];
              for (const id of ids) {
                // one refused job (retried meanwhile by someone else) must not stop the others
                try {
                  await actOnJob(pool, id, 'retry', who);
                  ok++;
                } catch (e) {
                  failed.push(`#${id}: ${(e as Error).message}`);
                }
              }
              return `retried ${plural(ok, `${a.type} job`)}${failed.length ? `; ${failed.length} refused (${failed[0]})` : ''}`;
            },
          };
        }
        case 'pause':
          return {
            prompt: `${a.pause ? 'pause' : 'resume'} job type ${a.type}?${a.pause ? ' (its queued jobs wait; running ones finish)' : ''}`,
            run: async () => {
              const r = await setPaused(pool, a.type, a.pause, who);
              if (!r.changed) return `${a.type} was already ${a.pause ? 'paused' : 'running'}: nothing changed`;
              return `${a.type} ${a.pause ? 'paused' : 'resumed'} by ${who.actor} (${plural(r.queued, 'queued job')})`;
            },
          };
        case 'kill': {
          const held = await killPreview(pool, a.flag);
          return {
            prompt: `kill flag ${a.flag}? it turns off and holds ${plural(held, 'queued job')} it allowed`,
            run: async () => {
              const r = await changeFlag(pool, a.flag, 'kill', who);
              return r.change_id
                ? `${a.flag} killed by ${who.actor}; ${plural(r.held_jobs, 'job')} held`
                : `${a.flag} was already killed: nothing changed`;
            },
          };
        }
      }
    },
  };
}
