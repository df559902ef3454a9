// canon as an application installs it: the sources are copied as a fresh clone has them and
// packed (`npm pack`, whose `prepare` builds dist/), the tarball is installed into a new empty
// project (`npm install --prefer-offline`: the npm cache `npm ci` filled, else the registry),
// and there, with nothing of this repository on the path:
//   - `npx canon demo` runs the example pipeline;
//   - README's TypeScript blocks (a pipeline; appending in the application's own transaction)
//     run against Postgres, with a worker started from code and the health snapshot;
//   - `canon init` scaffolds a pipeline and its test, refuses to overwrite them, and the
//     generated test passes as generated, through the package.json lines init printed;
//   - `tsc --strict` type-checks README's blocks, the scaffold and a file that uses the API,
//     including `@ts-expect-error` lines that the typed definePipeline must reject;
//   - a TypeScript pipeline in a CommonJS part of the project imports canon and runs.
// One pack and one install are shared by every test here.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { execa, type Options } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createEmptyDb, createTestDb, root, type TestDb } from './helpers.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-package-'));
const app = path.join(work, 'app');
const tsc = path.join(path.dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');

/** The environment of a shell in the project: npm's own variables from `npm test` stay out. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !/^npm_/i.test(k) && k !== 'DATABASE_URL' && k !== 'TEST_DATABASE_URL') env[k] = v;
  return { ...env, NO_COLOR: '1', CANON_HOME: path.join(work, 'canon-home'), ...extra };
}

async function sh(cmd: string, args: string[], opts: Options & { env?: Record<string, string> } = {}) {
  const r = await execa(cmd, args, {
    cwd: app,
    reject: false,
    timeout: 600_000,
    ...opts,
    env: cleanEnv(opts.env as Record<string, string>),
    extendEnv: false,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

const writeApp = (rel: string, text: string) => {
  fs.mkdirSync(path.dirname(path.join(app, rel)), { recursive: true });
  fs.writeFileSync(path.join(app, rel), text);
};

/** README's TypeScript blocks that are marked as tested, by the file named in their first line. */
function readmeBlocks(): { file: string; code: string }[] {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const marked = readme.split('<!-- test/package.test.ts installs').slice(1);
  return marked.map((part) => {
    const code = /```ts\n([\s\S]*?)```/.exec(part)![1];
    const file = /^\/\/ (\S+\.ts)\n/.exec(code)![1];
    return { file: path.join('readme', file), code };
  });
}

let db: TestDb;
beforeAll(async () => {
  // what a fresh clone holds (dist/ is gitignored): the package's files and its build config
  const src = path.join(work, 'canon');
  for (const entry of [
    'package.json',
    'tsconfig.json',
    'README.md',
    'bin',
    'src',
    'pipelines',
    'migrations',
    'runbooks',
    'deploy',
  ])
    fs.cpSync(path.join(root, entry), path.join(src, entry), { recursive: true });
  fs.symlinkSync(fs.realpathSync(path.join(root, 'node_modules')), path.join(src, 'node_modules'));
  const pack = await sh('npm', ['pack', '--json', '--pack-destination', work], { cwd: src });
  expect(pack.exitCode, pack.stderr).toBe(0);
  const tarball = path.join(work, JSON.parse(pack.stdout)[0].filename);
  const packed = JSON.parse(pack.stdout)[0].files.map((f: { path: string }) => f.path) as string[];
  for (const f of [
    'bin/canon',
    'dist/src/cli.js',
    'dist/src/index.d.ts',
    'dist/src/testing/index.js',
    'migrations/0001_ledger.sql',
  ])
    expect(packed).toContain(f);
  expect(packed.some((f) => f.startsWith('src/') || f.startsWith('test/'))).toBe(false);

  writeApp('package.json', JSON.stringify({ name: 'canon-adopter', private: true, type: 'module' }, null, 2));
  const install = await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball]);
  expect(install.exitCode, install.stderr).toBe(0);
  db = await createTestDb('package');
}, 900_000);

afterAll(async () => {
  await db?.end();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('the packed canon, installed in an empty project', () => {
  it('npx canon demo runs the example pipeline', async () => {
    const empty = await createEmptyDb('pkgdemo');
    try {
      const r = await sh('npx', ['canon', 'demo', '--documents', '5', '--json'], { env: { DATABASE_URL: empty.url } });
      expect(r.exitCode, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect([out.documents, out.anchored, out.dead_jobs, out.stalled]).toEqual([5, 5, 0, false]);
    } finally {
      await empty.end();
    }
  }, 300_000);

  it("README's pipeline and its append in the application's own transaction run, with a worker from code", async () => {
    for (const b of readmeBlocks()) writeApp(b.file, b.code);
    writeApp(
      'src/main.ts',
      `import pg from 'pg';
import { createLogger, healthSnapshot, readHistory, startWorker } from 'canon';
import { createInvoice } from '../readme/src/invoices.js';
import invoices from '../readme/invoices.js';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
// the customer is checked at commit (a deferred key), after the event was appended
await pool.query('create table customers (name text primary key)');
await pool.query("insert into customers values ('ACME')");
await pool.query('create table invoices (id serial primary key, customer text not null references customers deferrable initially deferred, total numeric not null)');
const id = await createInvoice(pool, 'ACME', 120);
const refused = await createInvoice(pool, 'Nobody', 5).then(() => 'accepted', (e) => e.message);
const jobs = await pool.query('select entity_id from canon.jobs order by id');
let rendered = 0;
const worker = await startWorker({
  pipeline: invoices,
  logger: createLogger({ level: 'silent' }),
  pollMs: 100,
  onJobDone: (job, outcome) => { if (job.type === 'render' && outcome === 'succeeded') rendered++; },
});
const deadline = Date.now() + 60_000;
while (!(await readHistory(pool, 'invoice-' + id)).some((e) => e.kind === 'render.succeeded') && Date.now() < deadline)
  await new Promise((r) => setTimeout(r, 100));
worker.stop();
const stats = await worker.done;
const health = await healthSnapshot(pool);
const int8 = (await pool.query("select '9007199254740993'::int8 as n")).rows[0].n;
console.log(JSON.stringify({
  refused,
  decisionJobsAtCommit: jobs.rows.map((r) => r.entity_id),
  kinds: (await readHistory(pool, 'invoice-' + id)).map((e) => e.kind),
  rolledBack: (await readHistory(pool, 'invoice-2')).length,
  invoices: (await pool.query('select count(*)::int as n from invoices')).rows[0].n,
  rendered,
  decided: stats.decisions > 0,
  dead: health.dead_last_24h,
  int8,
}));
await pool.end();
`,
    );
    const r = await sh('node', ['--import', 'tsx', 'src/main.ts'], { env: { DATABASE_URL: db.url } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      refused: expect.stringMatching(/violates foreign key constraint/),
      decisionJobsAtCommit: ['invoice-1'],
      kinds: ['invoice.created', 'job.render.required', 'render.succeeded'],
      // invoice 2's event was appended, then rolled back with it when its commit failed
      rolledBack: 0,
      invoices: 1,
      rendered: 1,
      decided: true,
      dead: 0,
      // importing canon left the application's pg alone: int8 is still text, exact
      int8: '9007199254740993',
    });
  }, 300_000);

  it('canon init scaffolds a pipeline and its test, refuses to overwrite, and the generated test passes', async () => {
    const first = await sh('npx', ['canon', 'init', '--json']);
    expect(first.exitCode, first.stderr).toBe(0);
    const out = JSON.parse(first.stdout);
    expect(out.files.map((f: { path: string }) => f.path)).toEqual([
      'pipelines/invoices.ts',
      'pipelines/invoices.test.ts',
    ]);
    const before = fs.readFileSync(path.join(app, 'pipelines/invoices.ts'), 'utf8');
    const again = await sh('npx', ['canon', 'init']);
    expect(again.exitCode).toBe(2);
    expect(again.stderr.trim()).toBe(
      'canon: pipelines/invoices.ts already exists: canon init never overwrites (pick another --name or --dir)',
    );
    expect(fs.readFileSync(path.join(app, 'pipelines/invoices.ts'), 'utf8')).toBe(before);
    // the user adds the printed lines to package.json; the dev dependency they name is the tsx
    // canon itself depends on, which the install above already put in the project
    const pkg = JSON.parse(fs.readFileSync(path.join(app, 'package.json'), 'utf8'));
    const canonPkg = JSON.parse(fs.readFileSync(path.join(app, 'node_modules/canon/package.json'), 'utf8'));
    expect(out.package_json.devDependencies).toEqual({ tsx: canonPkg.dependencies.tsx });
    expect(fs.existsSync(path.join(app, 'node_modules/tsx/package.json'))).toBe(true);
    pkg.scripts = { ...pkg.scripts, ...out.package_json.scripts };
    pkg.devDependencies = { ...pkg.devDependencies, ...out.package_json.devDependencies };
    writeApp('package.json', JSON.stringify(pkg, null, 2));
    const t = await sh('npm', ['run', 'test:pipeline'], { env: { TEST_DATABASE_URL: inject('adminUrl') } });
    expect(t.exitCode, t.stdout + t.stderr).toBe(0);
    expect(t.stdout).toMatch(/# pass 4\n/);
    expect(t.stdout).toMatch(/# fail 0\n/);
  }, 300_000);

  it("tsc --strict type-checks README's blocks, the scaffold and the API's types", async () => {
    writeApp(
      'src/types.ts',
      `import { definePipeline, type HandlerContext, type Health, type LedgerEvent, type RunningWorker } from 'canon';
import { decide, makeEntity, type PipelineRun, runHandler } from 'canon/testing';

const p = definePipeline({
  name: 'typed',
  flags: { ON: { default: true } },
  jobTypes: { a: {}, b: { maxAttempts: 2 } },
  authority: (entity, flags) => (flags.isOn('ON') && entity.events.length ? { required: [{ type: 'a' }] } : { done: true }),
  handlers: { a: async (ctx: HandlerContext) => ctx.entity.id, b: async () => null },
});

export function typeErrors(): void {
  definePipeline({
    name: 'x',
    jobTypes: { a: {} },
    // @ts-expect-error: "b" is not a job type of this pipeline
    authority: () => ({ required: [{ type: 'b' }] }),
    handlers: { a: async () => null },
  });
  definePipeline({
    name: 'x',
    flags: { ON: {} },
    jobTypes: { a: {} },
    // @ts-expect-error: OFF is not a declared flag
    authority: (_e, flags) => (flags.isOn('OFF') ? { done: true } : { done: true }),
    handlers: { a: async () => null },
  });
  // @ts-expect-error: the handler of "b" is missing
  definePipeline({ name: 'x', jobTypes: { a: {}, b: {} }, authority: () => ({ done: true }), handlers: { a: async () => null } });
  // @ts-expect-error: runHandler takes only the pipeline's job types
  void runHandler(p, 'c', { entity: makeEntity('e', []) });
  // @ts-expect-error: decide takes only the pipeline's flags
  decide(p, makeEntity('e', []), { flags: { OFF: true } });
}

export const types: ('a' | 'b')[] = decide(p, makeEntity('e', ['x'])).required.map((r) => r.type);
export type Seen = [Health['status'], LedgerEvent['position'], RunningWorker['id'], PipelineRun['settled']];
`,
    );
    writeApp(
      'tsconfig.json',
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          noEmit: true,
        },
        include: ['src', 'readme', 'pipelines'],
      }),
    );
    const r = await sh('node', [tsc, '-p', 'tsconfig.json']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    // and deep imports stay out: only the two entries are the package's surface
    const deep = await sh('node', ['--input-type=module', '-e', "await import('canon/dist/src/ledger.js')"]);
    expect(deep.stderr).toMatch(/ERR_PACKAGE_PATH_NOT_EXPORTED/);
  }, 300_000);

  it('a TypeScript pipeline in a CommonJS part of the project imports canon and runs', async () => {
    writeApp('legacy/package.json', JSON.stringify({ name: 'legacy', private: true }));
    writeApp(
      'legacy/notes.ts',
      `import { definePipeline } from 'canon';
export default definePipeline({
  name: 'notes',
  jobTypes: { file: { maxAttempts: 1 } },
  authority: (e) => (e.events.some((x) => x.kind === 'file.succeeded') ? { done: true } : { required: [{ type: 'file' }] }),
  handlers: { file: async ({ entity }) => ({ filed: entity.id, module: typeof require }) },
});
`,
    );
    const own = await createTestDb('pkgcjs');
    const env = { DATABASE_URL: own.url };
    const append = await sh('npx', ['canon', 'events', 'append', 'note-1', 'note.created'], { env });
    expect(append.exitCode, append.stderr).toBe(0);
    const r = await sh('npx', ['canon', 'work', '--once', '--log-level', 'warn', '--pipeline', 'legacy/notes.ts'], {
      env,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const events = (
      await own.pool.query("select kind, payload from canon.events where entity_id = 'note-1' order by seq")
    ).rows;
    await own.end();
    // it ran as CommonJS (require exists there), and still found canon's ESM entry
    expect(events.at(-1)).toEqual({
      kind: 'file.succeeded',
      payload: expect.objectContaining({ result: { filed: 'note-1', module: 'function' } }),
    });
  }, 300_000);
});
