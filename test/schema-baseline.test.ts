// The schema baseline lost nothing: the pre-release migration chain (taken from git at the
// last commit that had it) and today's migrations build catalogs that are identical, object
// by object, but for the differences listed here as intended. And each SQL function is
// created in exactly one file of the tree.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/migrate.js';
import { createEmptyDb, root, type TestDb } from './helpers.js';
import { type Catalog, diffCatalogs, readCatalog } from './support/catalog.js';

/** The last commit whose migrations/ held the pre-release chain (0001_canonical_schema … 0028). */
const PRE_BASELINE = '1790c88c48163cb2a7cc1e2a92283a3d0ad08b1d';

/** Objects that differ on purpose, each with the reason. */
const INTENDED: [RegExp, string][] = [
  [/canon\.schema_(migrations|definitions)/, "the migrator's own bookkeeping (the chain is applied here without it)"],
  [
    /^functions canon\.(begin_decision|finish_decision|begin_decisions|finish_decisions|enqueue_jobs)\(/,
    'decisions are made a batch at a time: one call locks and reads, one writes (jobs through the set-based gateway)',
  ],
  [
    /^functions canon\.(claim_jobs|claim_runs|claim_runs_with_history|refresh_entity_status|complete_runs)\(.* config$/,
    'jit = off where planner settings price a disabled plan node past jit_above_cost; batch joins walk keys',
  ],
  [
    /^indexes canon\.(jobs_entity_type_idx|jobs_queued_lane_idx|job_runs_worker_idx|jobs_running_idx|job_runs_running_idx)\b/,
    'fewer index entries per job version: redundant indexes dropped, running sets keyed on columns a heartbeat leaves alone',
  ],
  [
    /^constraints canon\.job_actions\.job_actions_(action_check|retry_has_job|new_job_when_made)\b/,
    '`canon jobs redrive` records the jobs it enqueues as job actions (0014)',
  ],
  [/^indexes canon\.workers_stopped_idx\b/, "diagnose finds a lane's last stopped worker (0015)"],
  [
    /^functions canon\.declare_job_type\(/,
    "a pipeline's job type enters the whitelist through one definer function, for workers and for steering commands",
  ],
  [
    /^relations canon\.(jobs|job_runs|entity_status|entities) reloptions$/,
    'per-table autovacuum and fillfactor of the hot tables (0018, decision 0030)',
  ],
  [
    /canon\.(prune_runs|entity_pruned|entity_pruned_counts|run_rejections_run_idx)\b|canon\.(prune_runs|entity_pruned)_pkey$|canon\.prune_runs_id_seq$|canon\.prune_(settled|start|batch|finish)\(/,
    'retention: canon prune, its record and the per-entity tally (0019, decision 0032)',
  ],
  [
    /^(functions canon\.entity_status_compute\(|views canon\.entity_status_recomputed( def)?$)/,
    'the status rules add the tally of pruned work (decision 0032)',
  ],
  [
    /^(relations|columns|constraints|indexes|triggers) canon\.(events_(\d{4}_\d{2}|default)|ledger_archives|archived_heads)/,
    'the ledger is partitioned by month of created_at (0021): its month partitions, the default one, and the record of archived months and their chain heads (decision 0034)',
  ],
  [
    /^(relations canon\.events relkind|columns canon\.events\.created_at default_expr|constraints canon\.events\.events_(\w+_not_null1?|kind_check1?|seq_check1?|pkey def)|indexes canon\.events_(pkey|position_key|created_at_idx|correlation_idx|kind_idx|required_created_idx|traced_created_idx) def)$/,
    'a partitioned ledger: every unique key holds created_at, the partition key, and created_at defaults to the clock so a row is routed before the chain trigger runs (decision 0034)',
  ],
  [
    /^functions canon\.(ensure_event_partitions|events_before_insert|history_floor|claim_runs_with_history)\(/,
    'month partitions made ahead of time; the chain trigger keeps the clock time only within the month the row was routed to, and refuses an event older than its entity so that history reads skip the months before it',
  ],
];

const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 });

function preBaselineChain(): { file: string; sql: string }[] {
  try {
    git('cat-file', '-e', `${PRE_BASELINE}^{commit}`);
  } catch {
    throw new Error(
      `commit ${PRE_BASELINE} is not in this clone: the catalog comparison needs the repository's history (git fetch --unshallow)`,
    );
  }
  const files = git('ls-tree', '--name-only', `${PRE_BASELINE}`, 'migrations/')
    .split('\n')
    .filter((f) => /^migrations\/\d{4}_.*\.sql$/.test(f))
    .sort();
  return files.map((file) => ({ file, sql: git('show', `${PRE_BASELINE}:${file}`) }));
}

const dbs: TestDb[] = [];
afterAll(async () => {
  for (const d of dbs) await d.end();
});

describe('the schema baseline', () => {
  it('builds the same catalog as the pre-release chain', async () => {
    const chain = preBaselineChain();
    expect(chain.length).toBe(26);
    const old = await createEmptyDb('chain');
    const now = await createEmptyDb('baseline');
    dbs.push(old, now);
    const oc = await old.pool.connect();
    const nc = await now.pool.connect();
    let left: Catalog;
    let right: Catalog;
    try {
      for (const m of chain) {
        await oc.query('begin');
        await oc.query(m.sql).catch((e) => {
          throw new Error(`${m.file}: ${(e as Error).message}`);
        });
        await oc.query('commit');
      }
      await migrate(nc);
      left = await readCatalog(oc);
      right = await readCatalog(nc);
    } finally {
      oc.release();
      nc.release();
    }
    const diffs = diffCatalogs(left, right).filter((d) => !INTENDED.some(([re]) => re.test(d.object)));
    expect(diffs, JSON.stringify(diffs, null, 1).slice(0, 4000)).toEqual([]);
    // the comparison saw the whole schema, not an empty one
    const kinds = (c: Catalog, k: string) => Object.keys(c).filter((x) => x.startsWith(`${k} `)).length;
    expect(kinds(right, 'functions')).toBeGreaterThan(60);
    expect(kinds(right, 'triggers')).toBeGreaterThan(20);
    expect(kinds(right, 'indexes')).toBeGreaterThan(40);
    expect(kinds(right, 'columns')).toBeGreaterThan(150);
  });
});

describe('SQL functions', () => {
  it('are each created in exactly one file, a definitions file, and never in a numbered migration', () => {
    const tracked = git('ls-files', '-co', '--exclude-standard')
      .split('\n')
      .filter((f) => /\.(sql|ts|tsx|mjs|js|md)$/.test(f) && fs.existsSync(path.join(root, f)));
    const create = /create\s+(?:or\s+replace\s+)?function\s+(canon|public)\.([a-z_][a-z0-9_]*)\s*\(/gi;
    const where = new Map<string, string[]>();
    for (const f of tracked) {
      const text = fs.readFileSync(path.join(root, f), 'utf8');
      for (const m of text.matchAll(create)) {
        const name = `${m[1]}.${m[2]}`.toLowerCase();
        // test fixtures that plant deliberately bad functions are named t_…
        if (name.startsWith('canon.t_')) continue;
        where.set(name, [...(where.get(name) ?? []), f]);
      }
    }
    expect(where.size).toBeGreaterThan(60);
    const twice = [...where].filter(([, files]) => files.length !== 1);
    expect(twice).toEqual([]);
    const outside = [...where].filter(([, files]) => !files[0].startsWith('migrations/repeatable/'));
    expect(outside).toEqual([]);
  });
});
