#!/usr/bin/env node
// `npm run soak`: canon under a steady pipeline load for many minutes, with a reader that holds
// one snapshot for several of them, on a database that already holds a large ledger. What a
// short benchmark on fresh tables never shows: dead rows piling up in the hot tables while a
// snapshot pins the MVCC horizon, the claim slowing down, and whether it all recovers.
//
// Entities go through the chain pipeline (bench/chain-pipeline.mjs: decide → step1 → decide →
// step2 → decide → step3 → decide) at a fixed rate, about half of what this server manages
// (measured first unless --rate is given), sent on an absolute schedule whatever the workers
// do. One worker process's worth of workers (both lanes, concurrency 10) runs in this process.
// Per minute: entities finished, two-hop latency (append committed → step1's handler started)
// p50/p99, the claim's round trip p50/p99, dead rows of the hot tables and the age of the
// oldest snapshot. From --hold-at for --hold minutes a REPEATABLE READ transaction holds its
// snapshot (and, with --export, `canon export` reads the whole ledger meanwhile).
//   --minutes N        length of the run (default 20)
//   --hold-at N        minute at which the reader takes its snapshot (default 7)
//   --hold N           minutes it holds it (default 5)
//   --rate R           entities per second offered (default: half the measured capacity)
//   --dataset NAME     the loaded database copied for the run (default canon_bench, the 10M-event
//                      dataset, loaded with `canon load` when missing); --dataset none: an empty one
//   --export           also run `canon export` on the copy during the hold
//   --server S         embedded (default), debian (scratch Debian PostgreSQL 15), or a URL
//   --out DIR          where the JSON goes (default bench/results)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { canonChain } from './chain.mjs';
import {
  adminQuery,
  canonBin,
  importDist,
  dataset as loadedDataset,
  migrateDb,
  percentile,
  pointAtServer,
  root,
  round,
  serverUrl,
  silentCanonLogger,
  sleep,
} from './lib.mjs';
import { startDebianCluster } from './server.mjs';

const HOT_TABLES = ['jobs', 'job_runs', 'entity_status', 'entities', 'events'];
const note = (msg) => process.stderr.write(`soak: ${msg}\n`);
const fail = (msg) => {
  process.stderr.write(`soak: ${msg}\n`);
  process.exit(2);
};

const { values: a } = parseArgs({
  options: {
    minutes: { type: 'string', default: '20' },
    'hold-at': { type: 'string', default: '7' },
    hold: { type: 'string', default: '5' },
    rate: { type: 'string' },
    dataset: { type: 'string', default: 'canon_bench' },
    export: { type: 'boolean', default: false },
    server: { type: 'string', default: 'embedded' },
    out: { type: 'string', default: path.join(root, 'bench', 'results') },
  },
});
const num = (name, v, min) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) fail(`--${name} must be a number ≥ ${min}, got "${v}"`);
  return n;
};
const o = {
  minutes: num('minutes', a.minutes, 3),
  holdAt: num('hold-at', a['hold-at'], 1),
  hold: num('hold', a.hold, 1),
  rate: a.rate === undefined ? undefined : num('rate', a.rate, 0.1),
};
if (o.holdAt + o.hold + 1 > o.minutes) fail('--hold-at + --hold must leave at least one minute after the hold');
if (a.dataset !== 'none' && !/^[a-z_][a-z0-9_]{0,62}$/.test(a.dataset)) fail('--dataset must be a plain database name');

let cluster;
if (a.server === 'debian') {
  cluster = await startDebianCluster();
  pointAtServer(cluster.url);
} else if (a.server !== 'embedded') {
  pointAtServer(a.server);
}

/** The run's database: a copy of the loaded dataset (so the dataset stays as loaded), migrated, with the chain pipeline. */
async function soakDatabase() {
  const name = `canon_soak_${Date.now().toString(36)}`;
  if (a.dataset === 'none') {
    await adminQuery(`create database ${name}`);
  } else {
    await loadedDataset(a.dataset, 1, note);
    note(`copying ${a.dataset} to ${name}`);
    await adminQuery(`create database ${name} template ${a.dataset}`);
  }
  const url = await serverUrl(name);
  await migrateDb(url);
  const pool = new pg.Pool({ connectionString: url, max: 30 });
  pool.on('error', () => {});
  const { loadPipeline } = await importDist('src/pipeline/load.js');
  const { syncPipeline } = await importDist('src/pipeline/sync.js');
  const { pipeline } = await loadPipeline(path.join(root, 'bench', 'chain-pipeline.mjs'));
  await syncPipeline(pool, pipeline);
  await pool.query('vacuum (analyze)');
  return { name, url, pool, pipeline };
}

/** The claim's round trips, timed at the pool: every query whose text calls a claim function. */
function timedPool(pool, claimMs) {
  return new Proxy(pool, {
    get(target, prop) {
      if (prop !== 'query') {
        const v = Reflect.get(target, prop);
        return typeof v === 'function' ? v.bind(target) : v;
      }
      return async (cfg, values) => {
        const text = typeof cfg === 'string' ? cfg : cfg?.text;
        if (!text?.includes('claim_runs')) return target.query(cfg, values);
        const t = performance.now();
        try {
          return await target.query(cfg, values);
        } finally {
          claimMs.push({ at: performance.now(), ms: performance.now() - t });
        }
      };
    },
  });
}

async function tableHealth(pool) {
  const r = await pool.query(
    `select relname, n_live_tup::bigint as live, n_dead_tup::bigint as dead
       from pg_stat_user_tables where schemaname = 'canon' and relname = any ($1)`,
    [HOT_TABLES],
  );
  const horizon = await pool.query(
    `select coalesce(max(age(backend_xmin)), 0)::int as xmin_age,
            coalesce(extract(epoch from max(now() - xact_start) filter (where backend_xmin is not null)), 0)::float8 as oldest_snapshot_s
       from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`,
  );
  return { dead: Object.fromEntries(r.rows.map((x) => [x.relname, Number(x.dead)])), ...horizon.rows[0] };
}

async function main() {
  let rate = o.rate;
  if (rate === undefined) {
    note('measuring capacity: 1,500 entities through the chain on a fresh database');
    const cap = await canonChain({ entities: 1500, concurrency: 10, batch: 10, timeoutMs: 600_000 });
    rate = round(cap.entities_per_second / 2, 1);
    note(`capacity ${round(cap.entities_per_second, 1)} entities/s: offering ${rate}/s`);
  }
  const db = await soakDatabase();
  const ledger = (await db.pool.query('select count(*)::bigint as n from canon.events')).rows[0].n;
  note(`${db.name}: ${Number(ledger).toLocaleString('en-US')} events before the run`);

  const sentAt = new Map();
  const startedAt = new Map();
  const finishedAt = [];
  const claimMs = [];
  globalThis.__canonBenchStarted = (id, at) => {
    if (!startedAt.has(id)) startedAt.set(id, at);
  };
  globalThis.__canonBenchFinished = (_id, at) => finishedAt.push(at);
  const { Worker } = await importDist('src/engine/worker.js');
  const { appendEvent } = await importDist('src/ledger.js');
  const worker = new Worker({
    pool: timedPool(db.pool, claimMs),
    url: db.url,
    pipeline: db.pipeline,
    lanes: ['decision', 'execution'],
    role: 'work',
    concurrency: 10,
    batchSize: 10,
    log: await silentCanonLogger(),
    listen: true,
    pollMs: 1000,
  });
  const running = worker.run();
  await sleep(300);

  const t0 = performance.now();
  const minuteMs = 60_000;
  const end = t0 + o.minutes * minuteMs;
  const holdFrom = t0 + o.holdAt * minuteMs;
  const holdTo = holdFrom + o.hold * minuteMs;
  const senders = new pg.Pool({ connectionString: db.url, max: 4 });
  senders.on('error', () => {});

  // the sender: absolute schedule, so a slow append does not lower the rate
  const sending = (async () => {
    const every = 1000 / rate;
    const pending = [];
    for (let i = 0; ; i++) {
      const due = t0 + i * every;
      if (due >= end) break;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const id = `soak-${i}`;
      pending.push(
        appendEvent(senders, { entityId: id, kind: 'chain.start', payload: {}, actor: 'soak' }).then(() =>
          sentAt.set(id, performance.now()),
        ),
      );
    }
    await Promise.all(pending);
  })();

  // the reader: one snapshot held from holdFrom to holdTo (and, with --export, a whole-ledger export)
  const reading = (async () => {
    await sleep(holdFrom - performance.now());
    const reader = new pg.Client({ connectionString: db.url });
    await reader.connect();
    await reader.query('begin isolation level repeatable read');
    await reader.query('select count(*) from canon.events');
    note(`minute ${o.holdAt}: a REPEATABLE READ snapshot is held for ${o.hold} min`);
    let exporting;
    if (a.export) {
      exporting = new Promise((resolve) => {
        const t = performance.now();
        const child = spawn('node', [canonBin, 'export', '--hash'], {
          cwd: root,
          env: { ...process.env, DATABASE_URL: db.url },
          stdio: ['ignore', 'ignore', 'inherit'],
        });
        child.on('close', (code) => resolve({ code, seconds: round((performance.now() - t) / 1000, 1) }));
      });
    }
    await sleep(holdTo - performance.now());
    await reader.query('commit');
    await reader.end();
    note(`minute ${o.holdAt + o.hold}: snapshot released`);
    return exporting ? await exporting : undefined;
  })();

  // one sample a minute
  const minutes = [];
  for (let m = 1; m <= o.minutes; m++) {
    await sleep(t0 + m * minuteMs - performance.now());
    const from = t0 + (m - 1) * minuteMs;
    const to = t0 + m * minuteMs;
    const hops = [];
    for (const [id, s] of sentAt) {
      const st = startedAt.get(id);
      if (s >= from && s < to && st !== undefined) hops.push(st - s);
    }
    const claims = claimMs.filter((c) => c.at >= from && c.at < to).map((c) => c.ms);
    const h = await tableHealth(db.pool);
    const row = {
      minute: m,
      phase: to <= holdFrom ? 'before' : from >= holdTo ? 'after' : 'held',
      finished_per_s: round(finishedAt.filter((t) => t >= from && t < to).length / 60, 1),
      two_hop_p50_ms: round(percentile(hops, 50), 1),
      two_hop_p99_ms: round(percentile(hops, 99), 1),
      claim_p50_ms: round(percentile(claims, 50), 2),
      claim_p99_ms: round(percentile(claims, 99), 2),
      dead: h.dead,
      xmin_age: h.xmin_age,
      oldest_snapshot_s: round(h.oldest_snapshot_s, 0),
    };
    minutes.push(row);
    note(
      `minute ${m} (${row.phase}): ${row.finished_per_s}/s, two hops p50 ${row.two_hop_p50_ms} p99 ${row.two_hop_p99_ms} ms, claim p99 ${row.claim_p99_ms} ms, dead jobs ${h.dead.jobs}`,
    );
  }
  await sending;
  const exported = await reading;
  worker.stop();
  await running;
  await senders.end();
  await db.pool.end();
  await adminQuery(`drop database if exists ${db.name}`).catch(() => {});
  return { rate, ledger_events: Number(ledger), minutes, exported, verdict: verdict(minutes) };
}

/** The goals, from the per-minute rows: the held minutes against the minutes before the hold (the first left out: warm-up). */
function verdict(rows) {
  const before = rows.filter((r) => r.phase === 'before').slice(1);
  const held = rows.filter((r) => r.phase === 'held');
  const after = rows.filter((r) => r.phase === 'after');
  const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const baseRate = mean(before.map((r) => r.finished_per_s));
  const baseP99 = mean(before.map((r) => r.two_hop_p99_ms));
  const heldRate = Math.min(...held.map((r) => r.finished_per_s));
  const heldP99 = Math.max(...held.map((r) => r.two_hop_p99_ms));
  // "back within a minute": the second minute after the hold is as good as before it
  const back = after[1] ?? after[0];
  const deadOf = (r) => HOT_TABLES.reduce((s, t) => s + (r.dead[t] ?? 0), 0);
  const deadBefore = Math.max(...before.map(deadOf));
  const deadEnd = deadOf(rows[rows.length - 1]);
  return {
    unloaded: { finished_per_s: round(baseRate, 1), two_hop_p99_ms: round(baseP99, 1) },
    held: { worst_finished_per_s: heldRate, worst_two_hop_p99_ms: heldP99 },
    throughput_held_ratio: round(heldRate / baseRate, 2),
    p99_held_ratio: round(heldP99 / baseP99, 2),
    recovered: back.finished_per_s >= 0.8 * baseRate && back.two_hop_p99_ms <= 2 * baseP99,
    dead_rows: { most_before_hold: deadBefore, at_end: deadEnd, peak_held: Math.max(...held.map(deadOf)) },
    goals_met: {
      throughput_held: heldRate >= 0.8 * baseRate,
      p99_held: heldP99 <= 2 * baseP99,
      recovered: back.finished_per_s >= 0.8 * baseRate && back.two_hop_p99_ms <= 2 * baseP99,
      dead_rows_bounded: deadEnd <= Math.max(2 * deadBefore, 1000),
    },
  };
}

/** One line per minute, with bars for the three figures people look at. */
function render(r) {
  const bar = (x, max, width = 20) => '█'.repeat(max > 0 ? Math.round((x / max) * width) : 0).padEnd(width);
  const maxRate = Math.max(...r.minutes.map((m) => m.finished_per_s));
  const maxP99 = Math.max(...r.minutes.map((m) => m.two_hop_p99_ms ?? 0));
  const maxDead = Math.max(...r.minutes.map((m) => m.dead.jobs ?? 0));
  const lines = [
    `min  phase   finished/s               two-hop p99 ms             claim p99  dead rows in jobs          snapshot`,
  ];
  for (const m of r.minutes) {
    lines.push(
      `${String(m.minute).padStart(3)}  ${m.phase.padEnd(6)}  ${String(m.finished_per_s).padStart(5)} ${bar(m.finished_per_s, maxRate)}  ${String(m.two_hop_p99_ms).padStart(6)} ${bar(m.two_hop_p99_ms ?? 0, maxP99)}  ${String(m.claim_p99_ms).padStart(6)} ms  ${String(m.dead.jobs ?? 0).padStart(6)} ${bar(m.dead.jobs ?? 0, maxDead)}  ${m.oldest_snapshot_s} s`,
    );
  }
  const v = r.verdict;
  lines.push(
    '',
    `offered ${r.rate} entities/s on a ledger of ${r.ledger_events.toLocaleString('en-US')} events`,
    `held snapshot: throughput ${v.throughput_held_ratio}× unloaded (goal ≥ 0.8: ${v.goals_met.throughput_held ? 'met' : 'missed'}), two-hop p99 ${v.p99_held_ratio}× (goal ≤ 2: ${v.goals_met.p99_held ? 'met' : 'missed'})`,
    `recovered within a minute: ${v.recovered ? 'yes' : 'no'}; dead rows of the hot tables: ${v.dead_rows.most_before_hold} before the hold, ${v.dead_rows.peak_held} at most while held, ${v.dead_rows.at_end} at the end (${v.goals_met.dead_rows_bounded ? 'bounded' : 'growing'})`,
  );
  if (r.exported) lines.push(`canon export during the hold: exit ${r.exported.code}, ${r.exported.seconds} s`);
  return lines.join('\n');
}

try {
  const r = await main();
  const out = { kind: 'soak', at: new Date().toISOString(), server: a.server, ...r };
  fs.mkdirSync(a.out, { recursive: true });
  const file = path.join(a.out, `${out.at.replace(/[:.]/g, '-')}-soak.json`);
  fs.writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(render(out));
  console.log(`results: ${path.relative(root, file)}`);
} finally {
  await cluster?.stop();
}
