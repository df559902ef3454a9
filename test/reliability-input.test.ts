// Bad input for every command (found from `canon --help`): unknown options, generated bad
// values for each positional argument and each numeric option, SQL-looking strings, unknown
// ids, and files that are missing, directories, 10 MB of JSON, nested 100 000 deep, invalid
// UTF-8 or SQL-looking; plus pipeline modules of wrong shapes and handlers that return what
// JSON cannot hold. Each refusal is one line, a non-zero exit and no stack trace, and the
// ledger digest (`canon export --hash`) is the same before and after. The many command lines
// run through the binary's own main() in one process (test/support/cli-batch.mjs); a sample
// also runs as separate processes to show the two agree.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvent } from '../src/ledger.js';
import { canon, createTestDb, type RunResult, root, type TestDb } from './helpers.js';
import { runBatch } from './support/batch.js';
import { argsFor, type CommandSpec, listCommands } from './support/commands.js';
import { checkInvariants } from './support/invariants.js';
import { hasStackTrace, report, soak } from './support/report.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-input-'));
const env = { CANON_TSA_KEY_DIR: scratch, CANON_HOME: path.join(scratch, 'home'), NO_COLOR: '1' };
const SQL = `x'); drop table canon.events; --`;

const files = {
  missing: path.join(scratch, 'no-such-file.json'),
  directory: scratch,
  big: path.join(scratch, 'big.json'),
  deep: path.join(scratch, 'deep.json'),
  badUtf8: path.join(scratch, 'bad-utf8.json'),
  sqlish: path.join(scratch, 'sqlish.json'),
  empty: path.join(scratch, 'empty.json'),
  garbage: path.join(scratch, 'garbage.bin'),
};

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('input');
  fs.writeFileSync(
    files.big,
    JSON.stringify({ format: 'canon-provenance', entities: [{ entity_id: 'x', pad: 'x'.repeat(10 * 1024 * 1024) }] }),
  );
  fs.writeFileSync(files.deep, '['.repeat(100_000) + ']'.repeat(100_000));
  fs.writeFileSync(
    files.badUtf8,
    Buffer.concat([Buffer.from('{"format":"'), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('"}')]),
  );
  fs.writeFileSync(
    files.sqlish,
    JSON.stringify({ format: SQL, entity_id: SQL, entities: [{ entity_id: SQL, hash: SQL }] }),
  );
  fs.writeFileSync(files.empty, '');
  fs.writeFileSync(files.garbage, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)));
  for (let i = 0; i < 3; i++)
    await appendEvent(db.pool, { entityId: `in-${i}`, kind: 'document.created', payload: { content: `input ${i}` } });
  const w = await canon(['work', '--once'], { url: db.url, env });
  expect(w.exitCode, w.stderr).toBe(0);
});
afterAll(async () => db.end());

interface Case {
  label: string;
  args: string[];
}

/** Bad values for a positional argument, by its name; each must be refused. */
function badValues(c: CommandSpec, placeholder: string): string[] {
  const key = c.path.join(' ');
  const long = 'x'.repeat(5000);
  switch (true) {
    case /^entity_id|^id$/.test(placeholder):
      return [SQL, '', long, 'tab\there', ...(key === 'events append' ? [] : ['no-such-entity-zz'])];
    case placeholder === 'kind':
      return [SQL, '', long];
    case placeholder === 'job_type':
      return [SQL, 'no_such_type', ''];
    case placeholder === 'flag':
      return [SQL, '', ...(key === 'flags create' ? [] : ['NO_SUCH_FLAG'])];
    case placeholder === 'job_id':
      return ['abc', '-1', '0', '99999999', `1; ${SQL}`];
    case placeholder === 'file':
      return key === 'backup' ? [path.join(scratch, 'no', 'such', 'dir.gz'), files.directory] : Object.values(files);
    default:
      return [SQL];
  }
}

const NUMERIC = /^(n|s|ms|seconds|x|h|r|percent|duration|port|days|count|limit|bytes)$/;

function numericOptions(c: CommandSpec): string[] {
  return [...c.help.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z-]*) <([^>]+)>/gm)]
    .filter((m) => NUMERIC.test(m[2]))
    .map((m) => m[1]);
}

function generate(specs: CommandSpec[]): Case[] {
  const cases: Case[] = [];
  const valid = (c: CommandSpec) => argsFor(c, { entity: 'in-0', file: () => path.join(scratch, 'valid-out.json') });
  for (const c of specs) {
    if (c.path[0] === 'db' && c.path[1] === 'start') continue; // starts a server under CANON_HOME: cli-foundation covers it
    const base = valid(c);
    cases.push({ label: `${c.path.join(' ')} --no-such-option`, args: [...base, '--no-such-option'] });
    cases.push({ label: `${c.path.join(' ')} extra argument`, args: [...base, SQL] });
    c.required.forEach((p, i) => {
      for (const v of badValues(c, p)) {
        const args = [...base];
        args[c.path.length + i] = v;
        cases.push({ label: `${c.path.join(' ')} <${p}>=${JSON.stringify(v.slice(0, 40))}`, args });
      }
    });
    for (const opt of numericOptions(c)) {
      for (const v of ['abc', '-1e999', SQL])
        cases.push({ label: `${c.path.join(' ')} ${opt} ${v.slice(0, 20)}`, args: [...base, opt, v] });
    }
  }
  // values that are only wrong for one command
  for (const args of [
    ['flags', 'rollout', 'D1_RUN_TSA_ENABLED', '101'],
    ['flags', 'rollout', 'D1_RUN_TSA_ENABLED', '-1'],
    ['flags', 'rollout', 'D1_RUN_TSA_ENABLED', '--auto', '--guard', `success_rate>=0.9; ${SQL}`],
    ['flags', 'rollout', 'D1_RUN_TSA_ENABLED', '--auto', '--every', 'yesterday'],
    ['flags', 'enable', 'D1_RUN_TSA_ENABLED', '--actor', 'a\u0001b'],
    ['flags', 'enable', 'D1_RUN_TSA_ENABLED', '--reason', 'r'.repeat(10_000)],
    ['gateway', 'mode', 'loose'],
    ['gateway', 'mode', `strict${SQL}`],
    ['health', '--threshold', `queued_max=${SQL}`],
    ['health', '--threshold', 'no_such_threshold=1'],
    ['alerts', '--threshold', 'lag_warning_seconds=-5'],
    ['dead-jobs', '--type', SQL],
    ['dead-jobs', '--reason', SQL],
    ['jobs', 'retry', '--type', SQL, '--yes'],
    ['events', 'append', 'in-9', 'document.created', '--payload', `{"a": "${SQL}"`],
    ['events', 'append', 'in-9', 'document.created', '--payload', `@${files.deep}`],
    ['events', 'append', 'in-9', 'document.created', '--payload', `@${files.directory}`],
    ['events', 'append', 'in-9', 'document.created', '--payload', `@${files.garbage}`],
    ['events', 'append', 'in-0', 'document.created', '--expected-seq', '999999999999999999999'],
    ['events', 'append', 'in-0', 'document.created', '--correlation-id', 'c'.repeat(5000)],
    ['report:provenance', 'in-0', '-o', path.join(scratch, 'no', 'dir', 'p.json')],
    ['report:provenance', 'in-0', SQL],
    ['export', '--out', path.join(scratch, 'no', 'dir', 'x.jsonl')],
    ['work', '--lanes', `decision,${SQL}`],
    ['work', '--pipeline', files.garbage],
    ['work', '--pipeline', files.directory],
    ['serve', '--host', SQL],
    ['serve', '--token-file', files.missing],
    ['serve', '--token-file', files.empty],
    ['watch', '--interval', '0'],
  ]) {
    cases.push({ label: args.join(' ').slice(0, 100), args });
  }
  return cases;
}

/** One clear line (health and alerts: the monitoring-plugin status line on stdout), non-zero, no stack. */
function problem(r: RunResult): string | undefined {
  if (r.exitCode === 0) return `exit 0 (accepted): ${(r.stdout + r.stderr).slice(0, 200)}`;
  if (r.exitCode < 0) return `did not finish: ${r.stderr.slice(0, 300)}`;
  if (hasStackTrace(r.stdout + r.stderr) || /UNCAUGHT|UNHANDLED|THREW/.test(r.stderr))
    return `stack trace: ${(r.stderr + r.stdout).slice(0, 600)}`;
  const err = r.stderr.trim().split('\n').filter(Boolean);
  const plugin = r.stdout.trim().split('\n').filter(Boolean);
  if (err.length === 1) return undefined;
  // health and alerts answer in the monitoring-plugin convention (their status line on stdout), and
  // a lookup that finds nothing says so on stdout with exit 1 (like grep): one line either way
  if (err.length === 0 && plugin.length === 1) return undefined;
  return `${err.length} stderr lines: ${r.stderr.slice(0, 400)}`;
}

const digest = async () => {
  const r = await canon(['export', '--hash'], { url: db.url, env });
  expect(r.exitCode, r.stderr).toBe(0);
  return r.stdout.trim();
};

describe('bad input', () => {
  it('every command refuses generated bad arguments, unknown ids and bad files with one line, a non-zero exit and no stack trace; the ledger is unchanged', async () => {
    const before = await digest();
    const specs = await listCommands();
    let cases = generate(specs);
    const rounds = soak(1);
    cases = Array.from({ length: rounds }, () => cases).flat();
    const results = await runBatch(cases.map((c) => ({ args: c.args, env: { ...env, DATABASE_URL: db.url } })));
    const problems = results.map((r, i) => [cases[i].label, problem(r)] as const).filter(([, p]) => p !== undefined);
    if (process.env.CANON_DEBUG_TIMING)
      console.log(
        results
          .map((r, i) => [r.ms, cases[i].label] as const)
          .sort((a, b) => b[0] - a[0])
          .slice(0, 20)
          .map((x) => x.join(' ms '))
          .join('\n'),
      );
    // the same verdict from real processes for a sample, so the in-process runs stand for the binary
    const sample = cases.filter((_, i) => i % Math.ceil(cases.length / 12) === 0);
    for (const c of sample) {
      const r = await canon(c.args, { url: db.url, env });
      const b = results[cases.indexOf(c)];
      expect({ label: c.label, code: r.exitCode, refused: problem(r) === undefined }).toEqual({
        label: c.label,
        code: b.exitCode,
        refused: problem(b) === undefined,
      });
    }
    const after = await digest();
    report('bad input: every command', {
      runs: results.length,
      commands: specs.length,
      refused_cleanly: results.length - problems.length,
      accepted_or_unclear: problems.length,
      stack_traces: problems.filter(([, p]) => /stack trace/.test(p!)).length,
      ledger_changed: before === after ? 0 : 1,
    });
    expect(problems.map(([l, p]) => `${l}: ${p}`)).toEqual([]);
    expect(after).toBe(before);
  }, 600_000);
});

describe('bad pipeline modules', () => {
  const mods = path.join(root, 'test/support/pipelines');
  const shapes = [
    'number.mjs',
    'array.mjs',
    'authority-not-function.mjs',
    'no-job-types.mjs',
    'decide-type.mjs',
    'syntax-error.mjs',
    'rejects-at-import.mjs',
    'throws-object.ts',
  ];

  it('wrong shapes, syntax errors and imports that throw non-Errors: one line naming the file, exit 2, ledger unchanged', async () => {
    const before = await digest();
    const cases = shapes.flatMap((f) => [
      { label: `work ${f}`, args: ['work', '--once', '--pipeline', path.join(mods, f)] },
      { label: `tick ${f}`, args: ['tick', '--pipeline', path.join(mods, f)] },
    ]);
    const results = await runBatch(cases.map((c) => ({ args: c.args, env: { ...env, DATABASE_URL: db.url } })));
    const bad = results
      .map((r, i) => [cases[i].label, r] as const)
      .filter(([label, r]) => problem(r) !== undefined || r.exitCode !== 2 || !r.stderr.includes(label.split(' ')[1]));
    expect(bad.map(([l, r]) => `${l}: exit ${r.exitCode} ${r.stderr.slice(0, 300)}`)).toEqual([]);
    // and as real processes, for the module loader's own paths (tsx for .ts)
    for (const f of ['syntax-error.mjs', 'throws-object.ts']) {
      const r = await canon(['work', '--once', '--pipeline', path.join(mods, f)], { url: db.url, env });
      expect(r.exitCode).toBe(2);
      expect(problem(r)).toBeUndefined();
    }
    expect(await digest()).toBe(before);
    report('bad input: pipeline module shapes', {
      runs: results.length + 2,
      modules: shapes.length,
      stack_traces: 0,
      ledger_changed: 0,
    });
  }, 120_000);

  it('handlers returning what JSON cannot hold, throwing non-Errors, and an authority throwing a string: each job ends dead with a clear reason, once; the worker carries on', async () => {
    const own = await createTestDb('input-values');
    try {
      const contents = [
        '#circular',
        '#function',
        '#symbol',
        '#nul',
        '#huge',
        '#throw-string',
        '#throw-undefined',
        '#throw-object',
        '#throw-number',
        'fine',
      ];
      for (const [i, c] of contents.entries())
        await appendEvent(own.pool, { entityId: `bv-${i}`, kind: 'document.created', payload: { content: c } });
      await appendEvent(own.pool, {
        entityId: 'bv-auth',
        kind: 'document.created',
        payload: { content: '#authority-string' },
      });
      const r = await canon(['work', '--once', '--pipeline', path.join(mods, 'bad-values.mjs'), '--log', 'json'], {
        url: own.url,
        env,
      });
      expect(r.exitCode, r.stderr.slice(0, 1000)).toBe(0);
      expect(hasStackTrace(r.stdout + r.stderr), r.stderr.slice(0, 2000)).toBe(false);
      const jobs = (
        await own.pool.query(
          `select entity_id, status, last_error from canon.jobs where type = 'protect' order by entity_id`,
        )
      ).rows as { entity_id: string; status: string; last_error: string | null }[];
      const byEntity = Object.fromEntries(jobs.map((j) => [j.entity_id, j]));
      for (const [i, c] of contents.entries()) {
        const j = byEntity[`bv-${i}`];
        expect(j, c).toBeDefined();
        expect(j.status, c).toBe(c === 'fine' ? 'succeeded' : 'failed');
        if (c !== 'fine') expect(j.last_error, c).toMatch(/\S/);
      }
      expect(byEntity['bv-0'].last_error).toMatch(/not JSON-serialisable/);
      expect(byEntity['bv-3'].last_error).toMatch(/NUL/);
      expect(byEntity['bv-4'].last_error).toMatch(/limit is 8 MiB/);
      const failedEvents = (
        await own.pool.query(
          `select entity_id, count(*)::int as n from canon.events where kind = 'protect.failed' group by 1`,
        )
      ).rows;
      expect(failedEvents.every((x) => x.n === 1)).toBe(true);
      expect(failedEvents.length).toBe(contents.length - 1);
      const auth = (
        await own.pool.query(
          `select status, error from canon.job_runs where entity_id = 'bv-auth' and lane = 'decision' order by id limit 1`,
        )
      ).rows[0];
      expect(auth).toMatchObject({ status: 'failed' });
      expect(auth.error).toMatch(/authority threw: authority says no/);
      const inv = await checkInvariants(own.pool);
      expect(inv.violations).toEqual({});
      report('bad input: handler results', {
        runs: contents.length + 1,
        dead_with_reason: contents.length - 1,
        doubled: 0,
        stack_traces: 0,
      });
    } finally {
      await own.end();
    }
  }, 120_000);
});
