// `canon demo`: what the README's first command runs. Migrates, appends example documents,
// runs the workers in this process until every document is anchored (or dead), and prints
// what happened and where to look next.
import { randomBytes } from 'node:crypto';
import { intArg, numberArg } from '../args.js';
import { tx } from '../db/connect.js';
import { embeddedPaths } from '../db/embedded.js';
import { describeUrl } from '../db/url.js';
import { createLogger } from '../engine/log.js';
import { startWorker } from '../engine/run.js';
import { appendEvent } from '../ledger.js';
import { migrateDatabase } from '../migrate.js';
import { Progress } from '../progress.js';
import { DEMO_SQL } from '../sql/demo.js';
import { examples, type Register } from './types.js';

const SAMPLES = [
  'Purchase agreement',
  'Lease contract',
  'Invoice',
  'Board minutes',
  'NDA',
  'Delivery note',
  'Power of attorney',
  'Audit report',
];

export const register: Register = (program, run) => {
  program
    .command('demo')
    .description('run the example pipeline (protect → tsa → anchor) on a batch of documents and show what happened')
    .option('--documents <n>', 'documents to create', intArg('--documents', 1, 1_000_000), 100)
    .option('--concurrency <n>', 'jobs run at once per lane', intArg('--concurrency', 1, 256), 8)
    .option(
      '--flaky-rate <r>',
      'share of timestamp calls that fail once, to show retries',
      numberArg('--flaky-rate', 0, 0.9),
      0.05,
    )
    .option('--timeout <s>', 'give up when nothing progresses for this long', numberArg('--timeout', 1, 86_400), 120)
    .addHelpText(
      'after',
      examples(
        'canon demo',
        'canon demo --documents 1000 --concurrency 16',
        'DATABASE_URL=postgres://me@localhost/scratch canon demo --json',
      ),
    )
    .action(
      run(async (ctx, o: { documents: number; concurrency: number; flakyRate: number; timeout: number }) => {
        const db = await ctx.db({ migrated: false });
        await migrateDatabase(db);
        process.env.CANON_EXAMPLE_FLAKY_RATE ??= String(o.flakyRate);
        const where = process.env.DATABASE_URL
          ? describeUrl(db.target.url)
          : `embedded Postgres, data in ${embeddedPaths().data}`;
        if (!ctx.json) ctx.info(`canon demo: ${o.documents} documents through protect → tsa → anchor (${where})`);

        const batch = randomBytes(3).toString('hex');
        const ids = Array.from(
          { length: o.documents },
          (_, i) => `doc-${batch}-${String(i + 1).padStart(String(o.documents).length, '0')}`,
        );
        const log = createLogger({ level: 'error' });
        const { worker, done } = await startWorker(ctx, {
          lanes: ['decision', 'execution'],
          role: 'work',
          log,
          concurrency: o.concurrency,
        });
        const started = Date.now();
        for (let i = 0; i < ids.length; i += 200) {
          await tx(db.pool, async (t) => {
            for (const id of ids.slice(i, i + 200)) {
              await appendEvent(t, {
                entityId: id,
                kind: 'document.created',
                payload: {
                  content: `${SAMPLES[Math.floor(Math.random() * SAMPLES.length)]} ${id}: ${randomBytes(16).toString('hex')}`,
                },
                actor: 'canon-demo',
              });
            }
          });
        }
        const bar = ctx.json ? undefined : new Progress('anchoring', ids.length, ctx.stderr, 'documents');
        let last = -1;
        let lastChange = Date.now();
        let finished = 0;
        let stalled = false;
        for (;;) {
          const p = (await db.pool.query(DEMO_SQL.progress, [ids])).rows[0];
          finished = p.done + p.failed;
          bar?.update(finished, p.failed ? `${p.failed} failed` : '');
          if (finished >= ids.length) break;
          if (finished !== last) {
            last = finished;
            lastChange = Date.now();
          }
          if (Date.now() - lastChange > o.timeout * 1000) {
            stalled = true;
            break;
          }
          await new Promise((r) => setTimeout(r, 200));
        }
        bar?.finish();
        // let the last decisions (each entity's final "done") run, so the demo leaves an idle queue
        const drainBy = Date.now() + o.timeout * 1000;
        while (!stalled && Date.now() < drainBy && (await db.pool.query(DEMO_SQL.pending, [ids])).rows[0].n > 0) {
          await new Promise((r) => setTimeout(r, 100));
        }
        worker.stop();
        const stats = await done;
        const s = (await db.pool.query(DEMO_SQL.summary, [ids])).rows[0];
        const seconds = (Date.now() - started) / 1000;
        const sample = ids[0];
        const summary = {
          database: where,
          documents: ids.length,
          anchored: ids.length - (s.dead_jobs as number),
          seconds: Number(seconds.toFixed(2)),
          entities: s.entities,
          events: s.events,
          jobs: s.jobs,
          runs: s.runs,
          retries: s.failed_runs,
          dead_jobs: s.dead_jobs,
          latency_ms: {
            p50: s.p50_ms === null ? null : Math.round(s.p50_ms),
            p99: s.p99_ms === null ? null : Math.round(s.p99_ms),
          },
          worker: stats,
          stalled,
          next: [`canon trace ${sample}`, `canon anchor verify ${sample}`, 'canon health', 'canon watch'],
        };
        ctx.print(summary, (d) =>
          [
            '',
            `${d.stalled ? ctx.c.red('stalled') : ctx.c.green('done')}: ${d.anchored}/${d.documents} documents anchored in ${d.seconds}s (${(d.documents / d.seconds).toFixed(1)}/s)`,
            `  events ${d.events}   jobs ${d.jobs}   runs ${d.runs}   retries ${d.retries}   dead ${d.dead_jobs}`,
            `  document.created → anchor.succeeded latency: p50 ${d.latency_ms.p50} ms, p99 ${d.latency_ms.p99} ms`,
            `  database: ${d.database}`,
            '',
            'Look closer:',
            ...d.next.map((n) => `  npx ${n}`),
          ].join('\n'),
        );
        return stalled ? 1 : 0;
      }),
    );
};
