// A smoke run of the benchmark harness (`npm run bench`), at its tiny size and only the
// side-by-side sections (chain, throughput, latency): it must run canon, graphile-worker (its
// defaults and its batched preset) and pg-boss on the same server, print the table with
// canon's ratios and write the JSON. The numbers are not judged here (speed belongs to
// bench/ and docs/PERFORMANCE.md, measured on a quiet machine).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, inject, it } from 'vitest';
import { root } from './helpers.js';

const bench = (args: string[]) =>
  execa('node', [path.join(root, 'bench', 'run.mjs'), ...args], {
    cwd: root,
    env: { DATABASE_URL: inject('adminUrl'), NO_COLOR: '1' },
    reject: false,
    timeout: 170_000,
  });

describe('npm run bench (tiny smoke)', () => {
  it('runs canon, graphile-worker and pg-boss side by side, prints the table and writes the JSON', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-bench-'));
    const r = await bench(['--size', 'tiny', '--only', 'chain,throughput,latency', '--out', out]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(r.stdout).toMatch(/three-step pipeline, entities\/s/);
    expect(r.stdout).toMatch(/no-op execution jobs\/s/);
    expect(r.stdout).toMatch(/canon ×[\d.]+/);
    expect(r.stdout).toMatch(/two hops, closed loop, p50 \/ p99 ms/);
    expect(r.stdout).toMatch(/two hops, open loop 40\/s, p50 \/ p99 ms/);
    const files = fs.readdirSync(out).filter((f) => f.endsWith('-tiny.json'));
    expect(files.length).toBe(1);
    const j = JSON.parse(fs.readFileSync(path.join(out, files[0]), 'utf8'));
    expect(j.chain.map((t: { system: string }) => t.system)).toEqual([
      'canon',
      'graphile-worker',
      'graphile-worker (batched)',
    ]);
    for (const t of j.chain) expect(t.entities_per_second).toBeGreaterThan(0);
    expect(Object.keys(j.chain_canon_ratio)).toEqual(['graphile-worker', 'graphile-worker (batched)']);
    expect(j.throughput.map((t: { system: string }) => t.system)).toEqual([
      'canon',
      'graphile-worker',
      'graphile-worker (batched)',
      'pg-boss',
    ]);
    for (const t of j.throughput) expect(t.jobs_per_second).toBeGreaterThan(0);
    expect(j.throughput[0].ratio_to_canon).toBe(1);
    expect(j.throughput_canon_ratio['graphile-worker (batched)']).toBeGreaterThan(0);
    expect(j.latency.map((l: { system: string; loop: string }) => `${l.system} ${l.loop}`)).toEqual([
      'canon closed',
      'graphile-worker closed',
      'canon open',
      'graphile-worker open',
    ]);
    for (const l of j.latency) expect(l.n).toBe(30);
    expect(j.machine.cpus).toBeGreaterThan(0);
    expect(j.machine.jit).toMatch(/^(on|off)$/);
    fs.rmSync(out, { recursive: true, force: true });
  }, 180_000);

  it('refuses a bad option with one line and exit 2', async () => {
    const r = await bench(['--size', 'huge']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr).trim().split('\n')).toEqual(['bench: --size must be tiny, small or full, got "huge"']);
  });
});
