#!/usr/bin/env node
// `npm run bench`: canon side by side with graphile-worker and pg-boss on this machine, and
// canon's read paths on the seed-sized dataset. Prints one table and writes the numbers to
// bench/results/<time>-<size>.json. Not part of `npm test` (the full size takes a while; a
// `--size tiny` smoke run is).
//   --size tiny|small|full   how much to do (default full: 3,000 chains × 3 rounds, 20,000
//                            jobs × 3 rounds, 1,000 events per latency run, 2,000
//                            documents, the 10M-event dataset)
//   --only a,b               sections: chain, throughput, latency, e2e, reads, tick
//   --server S               embedded (default: DATABASE_URL's server when set, else canon's
//                            embedded one), debian (a scratch cluster of the distribution's
//                            PostgreSQL 15 with initdb's settings, JIT on; stopped and removed
//                            at the end), or a postgres:// URL of any database on a server
//   --dataset NAME           database for reads and tick (default by size; loaded with
//                            `canon load` when missing, resumed when interrupted)
//   --concurrency N          handlers at once, the same for every system (default 10)
//   --out DIR                where the JSON goes (default bench/results)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import pg from 'pg';
import { canonChain, graphileChain } from './chain.mjs';
import { endToEnd } from './e2e.mjs';
import { canonLatency, graphileLatency } from './latency.mjs';
import { dataset as loadedDataset, pointAtServer, root, round, serverUrl } from './lib.mjs';
import { idleTick, readPaths } from './reads.mjs';
import { startDebianCluster } from './server.mjs';
import { canonThroughput, graphileThroughput, pgBossThroughput } from './throughput.mjs';

// latency: events per latency run, each loop and system; latencyBudget: seconds a run may
// take before it is cut off (a JIT-compiling server takes seconds per event)
const SIZES = {
  tiny: {
    chains: 30,
    jobs: 300,
    rounds: 1,
    latency: 30,
    warmup: 3,
    latencyBudget: 20,
    documents: 20,
    dataset: 'canon_bench_tiny',
    scale: 0.001,
    samples: { health: 5, trace: 10, status: 50, provenance: 2, process: 1 },
  },
  small: {
    chains: 1000,
    jobs: 5000,
    rounds: 1,
    latency: 300,
    warmup: 10,
    latencyBudget: 60,
    documents: 300,
    dataset: 'canon_bench_small',
    scale: 0.1,
    samples: { health: 20, trace: 50, status: 1000, provenance: 20, process: 3 },
  },
  full: {
    chains: 3000,
    jobs: 20000,
    rounds: 3,
    latency: 1000,
    warmup: 20,
    latencyBudget: 180,
    documents: 2000,
    dataset: 'canon_bench',
    scale: 1,
    samples: { health: 30, trace: 100, status: 2000, provenance: 30, process: 5 },
  },
};
const SECTIONS = ['chain', 'throughput', 'latency', 'e2e', 'reads', 'tick'];
// chain_ratio and throughput_ratio: canon ÷ graphile-worker with its batched preset
const GOALS = {
  chain_ratio: 1.0,
  throughput_ratio: 0.5,
  latency_p99_ms: 10,
  health_ms: 50,
  status_p95_ms: 1,
  provenance_p95_ms: 20,
};
// the open-loop latency runs' steady rate, events per second
const OPEN_LOOP_RATE = 40;
// what the ratios are taken against
const REFERENCE = 'graphile-worker (batched)';

function options() {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: 'full' },
      only: { type: 'string' },
      server: { type: 'string', default: 'embedded' },
      dataset: { type: 'string' },
      concurrency: { type: 'string', default: '10' },
      out: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    const lines = fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n');
    // the comment block this file opens with (after the shebang)
    const end = lines.findIndex((l, i) => i > 0 && !l.startsWith('//'));
    process.stdout.write(
      `${lines
        .slice(1, end)
        .map((l) => l.slice(3))
        .join('\n')}\n`,
    );
    process.exit(0);
  }
  const size = SIZES[values.size];
  if (!size) fail(`--size must be tiny, small or full, got "${values.size}"`);
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : SECTIONS;
  const bad = only.find((s) => !SECTIONS.includes(s));
  if (bad) fail(`--only takes ${SECTIONS.join(', ')}; got "${bad}"`);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 100)
    fail(`--concurrency must be a whole number from 1 to 100, got "${values.concurrency}"`);
  if (values.dataset && !/^[a-z_][a-z0-9_]{0,62}$/.test(values.dataset))
    fail(`--dataset must be a plain database name, got "${values.dataset}"`);
  const server = values.server;
  if (server !== 'embedded' && server !== 'debian' && !/^postgres(ql)?:\/\//.test(server))
    fail(`--server takes embedded, debian or a postgres:// URL, got "${server}"`);
  return {
    sizeName: values.size,
    size,
    only,
    server,
    concurrency,
    dataset: values.dataset ?? size.dataset,
    out: values.out ?? path.join(root, 'bench', 'results'),
  };
}

function fail(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}

const note = (msg) => process.stderr.write(`bench: ${msg}\n`);

async function machine(server) {
  const c = new pg.Client({ connectionString: await serverUrl('postgres') });
  await c.connect();
  const names = [
    'shared_buffers',
    'synchronous_commit',
    'jit',
    'jit_above_cost',
    'jit_inline_above_cost',
    'jit_optimize_above_cost',
    'max_connections',
  ];
  const v = (
    await c.query(
      'select version() as v, pg_jit_available() as jit_available, (select json_object_agg(name, current_setting(name)) from pg_settings where name = any($1)) as s',
      [names],
    )
  ).rows[0];
  // what differs from the server's built-in defaults, apart from what initdb sets for every
  // cluster (locale, time zone, text search configuration): which tuning the figures had
  const changed = (
    await c.query(
      `select name, current_setting(name) as setting from pg_settings
        where source not in ('default', 'override', 'client', 'session')
          and name not like 'lc\\_%' and name not in ('DateStyle', 'TimeZone', 'log_timezone', 'default_text_search_config')
        order by name`,
    )
  ).rows;
  await c.end();
  let commit = null;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root }).toString().trim();
  } catch {}
  // other work on the machine skews every figure: the load average is kept with the results
  return {
    load_average_at_start: os.loadavg().map((x) => round(x, 2)),
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model,
    memory_gib: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    server,
    postgres: v.v.split(' on ')[0],
    postgres_version: v.v,
    shared_buffers: v.s.shared_buffers,
    synchronous_commit: v.s.synchronous_commit,
    max_connections: Number(v.s.max_connections),
    jit: v.s.jit,
    jit_available: v.jit_available,
    jit_above_cost: Number(v.s.jit_above_cost),
    jit_inline_above_cost: Number(v.s.jit_inline_above_cost),
    jit_optimize_above_cost: Number(v.s.jit_optimize_above_cost),
    settings_changed: Object.fromEntries(changed.map((r) => [r.name, r.setting])),
    platform: `${os.platform()} ${os.release()}`,
    commit,
  };
}

/** The median round of one system by `key`, with every round's rate kept. */
function medianRound(all, key = 'jobs_per_second') {
  const mid = [...all].sort((a, b) => a[key] - b[key])[Math.floor(all.length / 2)];
  return { ...mid, rounds: all.map((r) => round(r[key], 0)) };
}

/** canon's rate ÷ each other system's, by system name. */
function canonRatios(rows, key) {
  const canon = rows.find((r) => r.system === 'canon')[key];
  return Object.fromEntries(rows.filter((r) => r.system !== 'canon').map((r) => [r.system, round(canon / r[key], 2)]));
}

// The scratch cluster of `--server debian`, stopped on every way out (an error, Ctrl-C).
let cluster;
async function stopCluster() {
  const c = cluster;
  cluster = undefined;
  await c?.stop().catch((e) => note(`could not stop the scratch cluster in ${c.dir}: ${e.message}`));
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    note(`${sig}: stopping`);
    stopCluster().finally(() => process.exit(130));
  });
}

async function main() {
  const o = options();
  let server = 'embedded';
  if (o.server === 'debian') {
    note('starting a scratch Debian PostgreSQL 15 cluster (initdb defaults, JIT on)');
    cluster = await startDebianCluster();
    pointAtServer(cluster.url);
    server = `debian (scratch cluster in ${cluster.dir}, port ${cluster.port})`;
  } else if (o.server !== 'embedded') {
    pointAtServer(o.server);
    server = 'url';
  } else if (process.env.DATABASE_URL) server = 'DATABASE_URL';
  const results = {
    date: new Date().toISOString(),
    size: o.sizeName,
    concurrency: o.concurrency,
    machine: await machine(server),
    goals: GOALS,
  };
  const on = (s) => o.only.includes(s);
  if (on('chain')) {
    const co = { entities: o.size.chains, concurrency: o.concurrency, batch: 10, timeoutMs: 900_000 };
    note(
      `chain: ${co.entities} entities through three no-op steps, concurrency ${o.concurrency}, ${o.size.rounds} round(s) each`,
    );
    // interleaved rounds, so a drift of the machine's speed hits every system alike
    const per = { canon: [], gw: [], gwb: [] };
    for (let i = 0; i < o.size.rounds; i++) {
      per.canon.push(await canonChain(co));
      per.gw.push(await graphileChain(co));
      per.gwb.push(await graphileChain(co, 'batched'));
    }
    results.chain = Object.values(per).map((all) => medianRound(all, 'entities_per_second'));
    results.chain_canon_ratio = canonRatios(results.chain, 'entities_per_second');
  }
  const tp = { jobs: o.size.jobs, concurrency: o.concurrency, batch: 10 };
  if (on('throughput')) {
    note(`throughput: ${tp.jobs} no-op jobs, concurrency ${o.concurrency}, ${o.size.rounds} round(s) each`);
    results.throughput = [];
    const per = { canon: [], gw: [], gwb: [], boss: [] };
    for (let i = 0; i < o.size.rounds; i++) {
      per.canon.push(await canonThroughput(tp));
      per.gw.push(await graphileThroughput(tp));
      per.gwb.push(await graphileThroughput(tp, 'batched'));
      per.boss.push(await pgBossThroughput(tp));
    }
    for (const k of Object.keys(per)) results.throughput.push(medianRound(per[k]));
    const canon = results.throughput[0].jobs_per_second;
    for (const r of results.throughput) r.ratio_to_canon = round(r.jobs_per_second / canon, 2);
    results.throughput_canon_ratio = canonRatios(results.throughput, 'jobs_per_second');
  }
  if (on('latency')) {
    const lo = {
      events: o.size.latency,
      warmup: o.size.warmup,
      concurrency: o.concurrency,
      budgetMs: o.size.latencyBudget * 1000,
    };
    note(`latency: two hops, ${lo.events} events per run, closed loop and open loop at ${OPEN_LOOP_RATE}/s`);
    results.latency = [];
    for (const loop of ['closed', 'open']) {
      const lop = { ...lo, loop, rate: OPEN_LOOP_RATE };
      results.latency.push(await canonLatency(lop), await graphileLatency(lop));
    }
  }
  if (on('e2e')) {
    note(`end to end: ${o.size.documents} documents through protect → tsa → anchor`);
    results.e2e = await endToEnd({ documents: o.size.documents, concurrency: 8 });
  }
  if (on('reads') || on('tick')) {
    if (cluster) note(`the dataset is loaded into the scratch cluster and removed with it`);
    const url = await loadedDataset(o.dataset, o.size.scale, note);
    results.dataset = o.dataset;
    if (on('reads')) {
      note(`read paths on ${o.dataset}`);
      results.reads = await readPaths(url, o.size);
    }
    if (on('tick')) {
      note("idle canon tick (the dataset's backlog is drained first)");
      results.tick_idle = await idleTick(url, o.size);
    }
  }
  results.machine.load_average_at_end = os.loadavg().map((x) => round(x, 2));
  await stopCluster();
  fs.mkdirSync(o.out, { recursive: true });
  const file = path.join(o.out, `${results.date.replace(/[:.]/g, '-')}-${o.sizeName}.json`);
  fs.writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`${render(results)}\nresults: ${path.relative(process.cwd(), file)}\n`);
}

function verdict(ok) {
  return ok === null ? '' : ok ? 'met' : 'MISSED';
}

/** One latency run as a cell: p50 / p99, or what was left unfinished within its budget. */
function latencyCell(x) {
  if (!x) return '-';
  if (x.unfinished)
    return `${x.unfinished} of ${x.sent} not started within ${x.budget_seconds} s${x.n ? ` (the rest: ${x.p50_of_finished} / ${x.p99_of_finished})` : ''}`;
  return `${x.p50} / ${x.p99}${x.cut_off ? ` (${x.n} events within ${x.budget_seconds} s)` : ''}`;
}

export function render(r) {
  const t = new Table({
    head: ['measure', 'canon', 'graphile-worker', 'graphile-worker (batched)', 'pg-boss', 'goal', ''],
    style: { head: [], border: [] },
  });
  const rate = (x, key, ratio) =>
    x ? `${Math.round(x[key]).toLocaleString('en-US')}/s${ratio === undefined ? '' : ` (canon ×${ratio})`}` : '-';
  if (r.chain) {
    const by = Object.fromEntries(r.chain.map((x) => [x.system, x]));
    const q = r.chain_canon_ratio;
    const cell = (s) => rate(by[s], 'entities_per_second', q[s]);
    t.push([
      `three-step pipeline, entities/s (${by.canon.entities} entities)`,
      cell('canon'),
      cell('graphile-worker'),
      cell(REFERENCE),
      '',
      `canon ≥ ${GOALS.chain_ratio}× batched`,
      verdict(q[REFERENCE] === undefined ? null : q[REFERENCE] >= GOALS.chain_ratio),
    ]);
    const wal = (s) => (by[s] ? `${by[s].wal_bytes_per_entity.toLocaleString('en-US')} B` : '-');
    t.push(['three-step pipeline, WAL per entity', wal('canon'), wal('graphile-worker'), wal(REFERENCE), '', '', '']);
  }
  if (r.throughput) {
    const by = Object.fromEntries(r.throughput.map((x) => [x.system, x]));
    const q = r.throughput_canon_ratio;
    const cell = (s) => rate(by[s], 'jobs_per_second', q[s]);
    t.push([
      'no-op execution jobs/s',
      cell('canon'),
      cell('graphile-worker'),
      cell(REFERENCE),
      cell('pg-boss'),
      `canon ≥ ${GOALS.throughput_ratio}× batched`,
      verdict(q[REFERENCE] === undefined ? null : q[REFERENCE] >= GOALS.throughput_ratio),
    ]);
  }
  if (r.latency) {
    for (const loop of ['closed', 'open']) {
      const c = r.latency.find((x) => x.system === 'canon' && x.loop === loop);
      const g = r.latency.find((x) => x.system === 'graphile-worker' && x.loop === loop);
      if (!c) continue;
      const label =
        loop === 'closed'
          ? 'two hops, closed loop, p50 / p99 ms'
          : `two hops, open loop ${c.rate_per_second}/s, p50 / p99 ms`;
      t.push([
        label,
        latencyCell(c),
        latencyCell(g),
        '',
        '',
        `canon p99 < ${GOALS.latency_p99_ms} ms`,
        verdict(!c.unfinished && c.p99 !== null && c.p99 < GOALS.latency_p99_ms),
      ]);
    }
  }
  if (r.e2e)
    t.push([
      'protect → tsa → anchor, entities/s',
      `${round(r.e2e.entities_per_second, 1)} (${r.e2e.documents} docs)`,
      '',
      '',
      '',
      '',
      '',
    ]);
  if (r.reads) {
    const x = r.reads;
    const ms = (s) => (s && s.p50 !== undefined ? `p50 ${s.p50} / p95 ${s.p95} ms` : (s?.missing ?? '-'));
    t.push([
      `health (${Number(x.dataset.events).toLocaleString('en-US')} events)`,
      ms(x.health),
      '',
      '',
      '',
      `< ${GOALS.health_ms} ms`,
      verdict(x.health.p95 < GOALS.health_ms),
    ]);
    t.push(['canon health, whole process', `${x.health_process.median_ms} ms`, '', '', '', '', '']);
    t.push(['dead-jobs (24 h / 30 days)', `${ms(x.dead_jobs)}; ${ms(x.dead_jobs_30d)}`, '', '', '', '', '']);
    t.push(['trace <entity>', ms(x.trace), '', '', '', '', '']);
    t.push([
      'status read',
      ms(x.status_read),
      '',
      '',
      '',
      `p95 < ${GOALS.status_p95_ms} ms`,
      verdict(x.status_read.p95 < GOALS.status_p95_ms),
    ]);
    t.push([
      'debug-provenance N = 10',
      ms(x.provenance_n10),
      '',
      '',
      '',
      `p95 < ${GOALS.provenance_p95_ms} ms`,
      verdict(x.provenance_n10.p95 < GOALS.provenance_p95_ms),
    ]);
    t.push(['watch snapshot query', ms(x.watch_snapshot), '', '', '', '', '']);
  }
  if (r.tick_idle)
    t.push([
      'canon tick, idle, whole process',
      `${r.tick_idle.median_ms} ms (median of ${r.tick_idle.n})`,
      '',
      '',
      '',
      '',
      '',
    ]);
  const m = r.machine;
  const jit =
    m.jit === undefined ? '' : `, jit ${m.jit}${m.jit === 'on' && !m.jit_available ? ' (no JIT provider)' : ''}`;
  return `canon bench (${r.size}, concurrency ${r.concurrency}) — ${r.date}\n${m.cpus} × ${m.cpu_model}, ${m.memory_gib} GiB, ${m.postgres}${jit}, Node ${m.node}, commit ${m.commit}, load average ${m.load_average_at_start?.[0]} → ${m.load_average_at_end?.[0]}\n(canon ×r: canon's rate ÷ that system's)\n${t.toString()}`;
}

main().then(
  () => process.exit(0),
  async (e) => {
    process.stderr.write(`bench: ${e.message.split('\n')[0]}\n`);
    await stopCluster();
    process.exit(1);
  },
);
