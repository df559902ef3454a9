// Pipelines anywhere: a module written as .ts, .mts, .mjs or .js, in a folder without a
// package.json, beside {"type": "module"} or beside {"type": "commonjs"}, exporting its
// pipeline as the default export or as `pipeline`, is loaded by `canon work` and runs: each
// module's handler stamps its own label into the result, and the entity appended for it ends
// with that result. Modules that really are wrong get one line naming the file and the field.
// The command lines run through the binary's main() in one process (test/support/batch.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { history } from '../src/ledger.js';
import { createTestDb, type TestDb } from './helpers.js';
import { runBatch } from './support/batch.js';
import { hasStackTrace } from './support/report.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-loader-'));
const FOLDERS = { bare: undefined, esm: { type: 'module' }, cjs: { type: 'commonjs' } } as const;
const EXTENSIONS = ['ts', 'mts', 'mjs', 'js'] as const;
const EXPORTS = ['default', 'named'] as const;

/** A pipeline in plain ESM syntax (TypeScript annotations only in .ts and .mts). */
function moduleText(label: string, ext: string, how: (typeof EXPORTS)[number]): string {
  const ts = ext.endsWith('ts');
  const body = `{
  name: 'loader-${label}',
  jobTypes: { step: { maxAttempts: 1, timeoutSeconds: 10 } },
  authority(entity${ts ? ': { events: { kind: string }[] }' : ''}) {
    const done = entity.events.some((e) => e.kind === 'step.succeeded');
    return done ? { done: true${ts ? ' as const' : ''} } : { required: [{ type: 'step' }] };
  },
  handlers: { step: async () => ({ from: '${label}' }) },
}`;
  return how === 'default' ? `export default ${body};\n` : `export const pipeline = ${body};\n`;
}

const cases = Object.entries(FOLDERS).flatMap(([folder, pkg]) =>
  EXTENSIONS.flatMap((ext) =>
    EXPORTS.map((how) => {
      const label = `${folder}-${ext}-${how}`;
      const dir = path.join(scratch, folder);
      fs.mkdirSync(dir, { recursive: true });
      if (pkg) fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `loader-${folder}`, ...pkg }));
      const file = path.join(dir, `${label}.${ext}`);
      fs.writeFileSync(file, moduleText(label, ext, how));
      return { label, file };
    }),
  ),
);

let db: TestDb;
const env = () => ({ DATABASE_URL: db.url, CANON_HOME: path.join(scratch, 'home') });
beforeAll(async () => {
  db = await createTestDb('loader');
});
afterAll(async () => {
  await db.end();
  fs.rmSync(scratch, { recursive: true, force: true });
});

describe('pipelines anywhere', () => {
  it(`${cases.length} modules (.ts .mts .mjs .js × no package.json, "module", "commonjs" × default and named export) load and run`, async () => {
    const results = await runBatch(
      cases.flatMap((c) => [
        { args: ['events', 'append', `e-${c.label}`, 'thing.created'], env: env() },
        { args: ['work', '--once', '--log-level', 'warn', '--pipeline', c.file], env: env() },
      ]),
    );
    const failed: string[] = [];
    for (const [i, c] of cases.entries()) {
      const [append, work] = [results[2 * i], results[2 * i + 1]];
      if (append.exitCode !== 0 || work.exitCode !== 0) {
        failed.push(`${c.label}: append ${append.exitCode}, work ${work.exitCode}: ${work.stderr.slice(0, 300)}`);
        continue;
      }
      const events = await history(db.pool, `e-${c.label}`);
      const result = events.find((e) => e.kind === 'step.succeeded')?.payload.result as { from?: string } | undefined;
      if (result?.from !== c.label) failed.push(`${c.label}: ran ${JSON.stringify(result)}`);
    }
    expect(failed).toEqual([]);
  }, 300_000);
});

describe('modules that really are wrong', () => {
  const bad = path.join(scratch, 'bad');
  const write = (name: string, text: string) => {
    fs.mkdirSync(bad, { recursive: true });
    fs.writeFileSync(path.join(bad, name), text);
    return path.join(bad, name);
  };

  it('one line naming the file and the field (or the place of a syntax error), exit 2, no stack trace', async () => {
    const wrong = [
      {
        file: write(
          'field.ts',
          `export default { name: 'x', jobTypes: { step: { maxAttempts: 0 } }, authority: () => ({ done: true }), handlers: { step: async () => 1 } };\n`,
        ),
        line: /^canon: pipeline \S*field\.ts: jobTypes\.step\.maxAttempts: .+$/,
      },
      {
        file: write(
          'missing-handler.js',
          `export const pipeline = { name: 'x', jobTypes: { step: {} }, authority: () => ({ done: true }), handlers: {} };\n`,
        ),
        line: /^canon: pipeline \S*missing-handler\.js: handlers\.step: job type "step" has no handler$/,
      },
      {
        file: write('nothing.mts', 'export const other = 1;\n'),
        line: /^canon: pipeline \S*nothing\.mts: no default export and no export named "pipeline" .+$/,
      },
      {
        file: write('syntax.ts', 'export default {\n  name: 1 +,\n};\n'),
        line: /^canon: pipeline \S*syntax\.ts: failed to load: \S*syntax\.ts:2:\d+: .+$/,
      },
      {
        file: write(
          'imports-canon.ts',
          "import { definePipeline } from 'canon';\nexport default definePipeline({} as never);\n",
        ),
        line: /^canon: pipeline \S*imports-canon\.ts: failed to load: Cannot find (package|module) 'canon'.* \(install canon in the module's project: npm install canon\)$/,
      },
      {
        file: write('data.json', '{}'),
        line: /^canon: pipeline \S*data\.json: not a JavaScript or TypeScript module \(.+\)$/,
      },
      { file: path.join(bad, 'absent.ts'), line: /^canon: pipeline \S*absent\.ts: file not found .+$/ },
    ];
    const results = await runBatch(wrong.map((w) => ({ args: ['work', '--once', '--pipeline', w.file], env: env() })));
    const problems = wrong.flatMap((w, i) => {
      const r = results[i];
      const lines = r.stderr.trim().split('\n');
      if (r.exitCode !== 2 || lines.length !== 1 || hasStackTrace(r.stderr) || !w.line.test(lines[0]))
        return [`${path.basename(w.file)}: exit ${r.exitCode}: ${r.stderr.slice(0, 400)}`];
      return [];
    });
    expect(problems).toEqual([]);
  }, 120_000);
});
