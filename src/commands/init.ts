// `canon init`: a pipeline to start from, in the user's project: a typed TypeScript module (two
// steps, the second behind a flag), its test (the authority and a handler without a database,
// then entities through the real worker on a throw-away database, with canon/testing), and the
// package.json lines that run them. Existing files are never overwritten.
import fs from 'node:fs';
import path from 'node:path';
import { CanonError, EXIT, usageError } from '../errors.js';
import { packageRoot } from '../paths.js';
import { examples, type Register } from './types.js';

const NAME = /^[a-z][a-z0-9_-]{0,62}$/;

interface InitOpts {
  dir: string;
  name: string;
}

export const register: Register = (program, run) => {
  program
    .command('init')
    .description('scaffold a TypeScript pipeline and its test in this project (never overwrites)')
    .option('--dir <dir>', 'folder for the pipeline and its test', 'pipelines')
    .option('--name <name>', 'the pipeline name (lowercase), also the file names', 'invoices')
    .addHelpText(
      'after',
      `${examples('canon init', 'canon init --dir src/pipelines --name orders', 'canon init --json')}

Writes <dir>/<name>.ts and <dir>/<name>.test.ts and prints the package.json lines that run them.
Exit 2 when either file exists (nothing is written).`,
    )
    .action(
      run(async (ctx, o: InitOpts) => {
        if (!NAME.test(o.name))
          throw usageError(
            `--name must be a lowercase name like "invoices" (letters, digits, - and _), got "${o.name}"`,
          );
        const dir = path.resolve(o.dir);
        const shown = (f: string) => path.relative(process.cwd(), f) || f;
        const files = [
          { file: path.join(dir, `${o.name}.ts`), role: 'pipeline', text: pipelineModule(o.name) },
          { file: path.join(dir, `${o.name}.test.ts`), role: 'test', text: pipelineTest(o.name) },
        ];
        for (const f of files)
          if (fs.existsSync(f.file))
            throw usageError(
              `${shown(f.file)} already exists: canon init never overwrites (pick another --name or --dir)`,
            );
        if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory())
          throw usageError(`--dir ${shown(dir)} is a file, not a folder`);
        try {
          fs.mkdirSync(dir, { recursive: true });
          // 'wx': a file created meanwhile by someone else is refused, not overwritten
          for (const f of files) fs.writeFileSync(f.file, f.text, { flag: 'wx' });
        } catch (e) {
          throw new CanonError(`cannot write in ${shown(dir)}: ${(e as Error).message}`, EXIT.FAILURE);
        }
        const rel = (f: string) => shown(f).split(path.sep).join('/');
        const packageJson = {
          scripts: {
            'test:pipeline': `node --import tsx --test ${rel(files[1].file)}`,
            work: `canon work --pipeline ${rel(files[0].file)}`,
          },
          devDependencies: { tsx: tsxRange() },
        };
        const out = {
          files: files.map((f) => ({ path: rel(f.file), role: f.role })),
          package_json: packageJson,
          next: ['npm install', 'npm run test:pipeline', 'npx canon migrate', 'npm run work'],
        };
        ctx.print(out, (d) =>
          [
            ...d.files.map((f) => `created ${f.path}`),
            '',
            'Add to package.json:',
            ...JSON.stringify(d.package_json, null, 2)
              .split('\n')
              .slice(1, -1)
              .map((l) => `  ${l.slice(2)}`),
            '',
            'Then:',
            ...d.next.map((n) => `  ${n}`),
            '',
            'The test runs the pipeline on a throw-away database: on TEST_DATABASE_URL (the user needs',
            "CREATEDB) when it is set, else on canon's embedded Postgres (stop it with `npx canon db stop`).",
          ].join('\n'),
        );
        return EXIT.OK;
      }),
    );
};

/** The tsx range canon itself depends on: the loader the printed test script uses. */
function tsxRange(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8'));
  return pkg.dependencies.tsx;
}

const flagOf = (name: string) => `${name.toUpperCase().replace(/-/g, '_')}_SEND`;

function pipelineModule(name: string): string {
  const flag = flagOf(name);
  return `// The ${name} pipeline: ${name}.created → render → send (send only while the flag ${flag} is on).
// canon runs it with \`canon work --pipeline <this file>\`. The authority is pure (history and
// flags in, the next jobs out); handlers are async and idempotent, since a job can run twice.
import { definePipeline, type Entity, PreconditionError } from 'canon';

const has = (entity: Entity, kind: string) => entity.events.some((e) => e.kind === kind);

export default definePipeline({
  name: '${name}',
  flags: {
    ${flag}: { default: false, description: 'send each rendered document' },
  },
  jobTypes: {
    render: { maxAttempts: 5, timeoutSeconds: 60, backoff: { baseSeconds: 1, maxSeconds: 60 } },
    send: { maxAttempts: 5, timeoutSeconds: 30, backoff: { baseSeconds: 1, maxSeconds: 60 } },
  },

  authority(entity, flags) {
    if (!has(entity, '${name}.created')) return { done: true };
    if (has(entity, 'render.failed') || has(entity, 'send.failed')) return { done: true, outcome: 'failed' };
    if (!has(entity, 'render.succeeded')) return { required: [{ type: 'render' }] };
    if (flags.isOn('${flag}') && !has(entity, 'send.succeeded')) return { required: [{ type: 'send' }] };
    return { done: true, outcome: 'completed' };
  },

  handlers: {
    async render({ entity }) {
      const total = entity.events.find((e) => e.kind === '${name}.created')?.payload.total;
      // bad input in the history: retrying cannot help, so the job is dead at once
      if (typeof total !== 'number') throw new PreconditionError('${name}.created has no numeric "total"');
      return { document: \`\${entity.id}: total \${total.toFixed(2)}\` };
    },
    async send({ entity, log }) {
      const rendered = entity.events.find((e) => e.kind === 'render.succeeded')?.payload.result as
        | { document: string }
        | undefined;
      log.info('sending', { document: rendered?.document });
      return { sent: true };
    },
  },
});
`;
}

function pipelineTest(name: string): string {
  const flag = flagOf(name);
  return `// Tests of the ${name} pipeline (node --import tsx --test): the authority and a handler without a
// database, then two entities through canon's worker on a throw-away database.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decide, makeEntity, runHandler, runPipeline } from 'canon/testing';
import pipeline from './${name}.js';

test('the authority: a new entity is rendered first', () => {
  const plan = decide(pipeline, makeEntity('${name}-1', [{ kind: '${name}.created', payload: { total: 12.5 } }]));
  assert.deepEqual(
    plan.required.map((r) => r.type),
    ['render'],
  );
});

test('the authority: once rendered, it is sent only while ${flag} is on', () => {
  const entity = makeEntity('${name}-1', [
    { kind: '${name}.created', payload: { total: 12.5 } },
    'job.render.required',
    { kind: 'render.succeeded', payload: { result: { document: '${name}-1: total 12.50' } } },
  ]);
  assert.deepEqual(decide(pipeline, entity, { flags: { ${flag}: false } }).outcome, 'completed');
  assert.deepEqual(
    decide(pipeline, entity, { flags: { ${flag}: true } }).required.map((r) => r.type),
    ['send'],
  );
});

test('render: a document from the total; without a total the job is dead at once', async () => {
  const ok = await runHandler(pipeline, 'render', {
    entity: makeEntity('${name}-1', [{ kind: '${name}.created', payload: { total: 12.5 } }]),
  });
  assert.deepEqual(ok, { outcome: 'succeeded', result: { document: '${name}-1: total 12.50' } });
  const bad = await runHandler(pipeline, 'render', { entity: makeEntity('${name}-2', ['${name}.created']) });
  assert.equal(bad.outcome, 'dead');
});

test('two entities through the worker on a throw-away database', async () => {
  const run = await runPipeline(
    pipeline,
    [
      { id: '${name}-a', events: [{ kind: '${name}.created', payload: { total: 10 } }] },
      { id: '${name}-b', events: [{ kind: '${name}.created', payload: { total: 20 } }] },
    ],
    { flags: { ${flag}: true } },
  );
  assert.equal(run.settled, true);
  for (const id of ['${name}-a', '${name}-b']) {
    const entity = run.entities[id];
    assert.equal(entity.status, 'completed');
    assert.deepEqual(
      entity.events.map((e) => e.kind),
      ['${name}.created', 'job.render.required', 'render.succeeded', 'job.send.required', 'send.succeeded'],
    );
    assert.equal(entity.trace.counts.dead_jobs, 0);
  }
});
`;
}
