#!/usr/bin/env node
// `npm run bench`: canon side by side with graphile-worker and pg-boss on this machine, and
// canon's read paths on the seed-sized dataset. Prints one table and writes the numbers to
// bench/results/<time>-<size>.json. Not part of `npm test` (the full size takes a while; a
// `--size tiny` smoke run is).
//   --size tiny|small|full   how much to do (default full: 20,000 jobs × 3 rounds, 1,000
//                            sequential events, 2,000 documents, the 10M-event dataset)
//   --only a,b               sections: throughput, latency, e2e, reads, tick
//   --dataset NAME           database for reads and tick (default by size; loaded with
//                            `canon load` when missing, resumed when interrupted)
//   --concurrency N          handlers at once, the same for every system (default 10)
//   --out DIR                where the JSON goes (default bench/results)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import Table from 'cli-table3';
import { databaseExists, adminQuery, root, round, runCanon, serverUrl } from './lib.mjs';
import { canonThroughput, graphileThroughput, pgBossThroughput } from './throughput.mjs';
import { canonLatency, graphileLatency } from './latency.mjs';
import { endToEnd } from './e2e.mjs';
import { idleTick, readPaths } from './reads.mjs';

const SIZES = {
  tiny: { jobs: 300, rounds: 1, latency: 30, warmup: 3, documents: 20, dataset: 'canon_bench_tiny', scale: 0.001, samples: { health: 5, trace: 10, status: 50, provenance: 2, process: 1 } },
  small: { jobs: 5000, rounds: 1, latency: 300, warmup: 10, documents: 300, dataset: 'canon_bench_small', scale: 0.1, samples: { health: 20, trace: 50, status: 1000, provenance: 20, process: 3 } },
  full: { jobs: 20000, rounds: 3, latency: 1000, warmup: 20, documents: 2000, dataset: 'canon_bench', scale: 1, samples: { health: 30, trace: 100, status: 2000, provenance: 30, process: 5 } },
};
const SECTIONS = ['throughput', 'latency', 'e2e', 'reads', 'tick'];
const GOALS = { throughput_ratio: 1.0, latency_p99_ms: 25, health_ms: 50, status_p95_ms: 1, provenance_p95_ms: 20 };

function options() {
  const { values } = parseArgs({
    options: { size: { type: 'string', default: 'full' }, only: { type: 'string' }, dataset: { type: 'string' }, concurrency: { type: 'string', default: '10' }, out: { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help) {
    process.stdout.write(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).slice(0, 12).map((l) => l.slice(3)).join('\n') + '\n');
    process.exit(0);
  }
  const size = SIZES[values.size];
  if (!size) fail(`--size must be tiny, small or full, got "${values.size}"`);
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : SECTIONS;
  const bad = only.find((s) => !SECTIONS.includes(s));
  if (bad) fail(`--only takes ${SECTIONS.join(', ')}; got "${bad}"`);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 100) fail(`--concurrency must be a whole number from 1 to 100, got "${values.concurrency}"`);
  if (values.dataset && !/^[a-z_][a-z0-9_]{0,62}$/.test(values.dataset)) fail(`--dataset must be a plain database name, got "${values.dataset}"`);
  return { sizeName: values.size, size, only, concurrency, dataset: values.dataset ?? size.dataset, out: values.out ?? path.join(root, 'bench', 'results') };
}

function fail(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}

const note = (msg) => process.stderr.write(`bench: ${msg}\n`);

async function machine() {
  const c = new pg.Client({ connectionString: await serverUrl('postgres') });
  await c.connect();
  const v = (await c.query('select version() as v, current_setting($1) as sb, current_setting($2) as sc', ['shared_buffers', 'synchronous_commit'])).rows[0];
  await c.end();
  let commit = null;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root }).toString().trim();
  } catch {}
  // other work on the machine skews every figure: the load average is kept with the results
  return { load_average_at_start: os.loadavg().map((x) => round(x, 2)), cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model, memory_gib: round(os.totalmem() / 2 ** 30, 1), node: process.version, postgres: v.v.split(' on ')[0], shared_buffers: v.sb, synchronous_commit: v.sc, platform: `${os.platform()} ${os.release()}`, commit };
}

/** The dataset for reads: loaded once with `canon load` at the size's scale, then reused. */
async function dataset(name, scale) {
  const url = await serverUrl(name);
  if (!(await databaseExists(name))) {
    await adminQuery(`create database ${name}`);
    note(`loading the dataset into ${name} (canon load${scale === 1 ? '' : ` --scale ${scale}`}); it is kept for later runs`);
  }
  const env = { DATABASE_URL: url };
  const m = await runCanon(['migrate'], env);
  if (m.code !== 0) throw new Error(`canon migrate on ${name}: ${m.stderr.trim()}`);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const marker = (await c.query(`select value from canon.settings where key = 'load'`)).rows[0]?.value;
  await c.end();
  const state = marker ? JSON.parse(marker) : null;
  if (state?.status !== 'complete') {
    const args = ['load', ...(scale === 1 ? [] : ['--scale', String(scale)]), ...(state ? ['--resume'] : [])];
    const r = await new Promise((resolve) => {
      import('node:child_process').then(({ spawn }) => {
        const child = spawn('node', [path.join(root, 'bin', 'canon'), ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
        child.on('close', (code) => resolve(code));
      });
    });
    if (r !== 0) throw new Error(`canon load into ${name} exited ${r}`);
  }
  return url;
}

/** The median round of one system, with every round's rate kept. */
function medianRound(all) {
  const mid = [...all].sort((a, b) => a.jobs_per_second - b.jobs_per_second)[Math.floor(all.length / 2)];
  return { ...mid, rounds: all.map((r) => round(r.jobs_per_second, 0)) };
}

async function main() {
  const o = options();
  const results = { date: new Date().toISOString(), size: o.sizeName, concurrency: o.concurrency, machine: await machine(), goals: GOALS };
  const on = (s) => o.only.includes(s);
  const tp = { jobs: o.size.jobs, concurrency: o.concurrency, batch: 10 };
  if (on('throughput')) {
    note(`throughput: ${tp.jobs} no-op jobs, concurrency ${o.concurrency}, ${o.size.rounds} round(s) each`);
    results.throughput = [];
    // interleaved rounds, so a drift of the machine's speed hits every system alike
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
  }
  if (on('latency')) {
    note(`latency: ${o.size.latency} sequential events`);
    const lo = { events: o.size.latency, warmup: o.size.warmup, concurrency: o.concurrency };
    results.latency = [await canonLatency(lo), await graphileLatency(lo)];
  }
  if (on('e2e')) {
    note(`end to end: ${o.size.documents} documents through protect → tsa → anchor`);
    results.e2e = await endToEnd({ documents: o.size.documents, concurrency: 8 });
  }
  if (on('reads') || on('tick')) {
    const url = await dataset(o.dataset, o.size.scale);
    results.dataset = o.dataset;
    if (on('reads')) {
      note(`read paths on ${o.dataset}`);
      results.reads = await readPaths(url, o.size);
    }
    if (on('tick')) {
      note('idle canon tick (the dataset\'s backlog is drained first)');
      results.tick_idle = await idleTick(url, o.size);
    }
  }
  results.machine.load_average_at_end = os.loadavg().map((x) => round(x, 2));
  fs.mkdirSync(o.out, { recursive: true });
  const file = path.join(o.out, `${results.date.replace(/[:.]/g, '-')}-${o.sizeName}.json`);
  fs.writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
  process.stdout.write(render(results) + `\nresults: ${path.relative(process.cwd(), file)}\n`);
}

function verdict(ok) {
  return ok === null ? '' : ok ? 'met' : 'MISSED';
}

export function render(r) {
  const t = new Table({ head: ['measure', 'canon', 'graphile-worker', 'graphile-worker (batched)', 'pg-boss', 'goal', ''], style: { head: [], border: [] } });
  if (r.throughput) {
    const by = Object.fromEntries(r.throughput.map((x) => [x.system, x]));
    const cell = (x) => (x ? `${Math.round(x.jobs_per_second)}/s (×${x.ratio_to_canon})` : '-');
    const gw = by['graphile-worker'];
    t.push(['no-op jobs/s (ratio to canon)', cell(by.canon), cell(gw), cell(by['graphile-worker (batched)']), cell(by['pg-boss']), `canon ≥ graphile-worker`, verdict(gw ? by.canon.jobs_per_second >= gw.jobs_per_second * GOALS.throughput_ratio : null)]);
  }
  if (r.latency) {
    const [c, g] = r.latency;
    t.push(['event → handler start p50 / p99 ms', `${c.p50} / ${c.p99}`, `${g.p50} / ${g.p99}`, '', '', `p99 < ${GOALS.latency_p99_ms} ms`, verdict(c.p99 < GOALS.latency_p99_ms)]);
  }
  if (r.e2e) t.push(['protect → tsa → anchor, entities/s', `${round(r.e2e.entities_per_second, 1)} (${r.e2e.documents} docs)`, '', '', '', '', '']);
  if (r.reads) {
    const x = r.reads;
    const ms = (s) => (s && s.p50 !== undefined ? `p50 ${s.p50} / p95 ${s.p95} ms` : s?.missing ?? '-');
    t.push([`health (${Number(x.dataset.events).toLocaleString('en-US')} events)`, ms(x.health), '', '', '', `< ${GOALS.health_ms} ms`, verdict(x.health.p95 < GOALS.health_ms)]);
    t.push(['canon health, whole process', `${x.health_process.median_ms} ms`, '', '', '', '', '']);
    t.push(['dead-jobs (24 h / 30 days)', `${ms(x.dead_jobs)}; ${ms(x.dead_jobs_30d)}`, '', '', '', '', '']);
    t.push(['trace <entity>', ms(x.trace), '', '', '', '', '']);
    t.push(['status read', ms(x.status_read), '', '', '', `p95 < ${GOALS.status_p95_ms} ms`, verdict(x.status_read.p95 < GOALS.status_p95_ms)]);
    t.push(['debug-provenance N = 10', ms(x.provenance_n10), '', '', '', `p95 < ${GOALS.provenance_p95_ms} ms`, verdict(x.provenance_n10.p95 < GOALS.provenance_p95_ms)]);
    t.push(['watch snapshot query', ms(x.watch_snapshot), '', '', '', '', '']);
  }
  if (r.tick_idle) t.push(['canon tick, idle, whole process', `${r.tick_idle.median_ms} ms (median of ${r.tick_idle.n})`, '', '', '', '', '']);
  const m = r.machine;
  return `canon bench (${r.size}, concurrency ${r.concurrency}) — ${r.date}\n${m.cpus} × ${m.cpu_model}, ${m.memory_gib} GiB, ${m.postgres}, Node ${m.node}, commit ${m.commit}, load average ${m.load_average_at_start?.[0]} → ${m.load_average_at_end?.[0]}\n${t.toString()}`;
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench: ${e.message.split('\n')[0]}\n`);
    process.exit(1);
  },
);
