// `canon prune`: retention of finished work. Removes the jobs and runs of settled entities
// whose work all ended before the horizon, a small batch per transaction, online while workers
// run; each run is recorded in canon.prune_runs. Never touches the ledger.
import { intArg, parseDuration } from '../args.js';
import type { Ctx } from '../context.js';
import { EXIT, usageError } from '../errors.js';
import { fmtSecs } from '../format.js';
import { Progress } from '../progress.js';
import { type PruneSummary, prune } from '../retention/prune.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  program
    .command('prune')
    .description('remove finished jobs and runs past a horizon, in small batches, online (never the ledger)')
    .requiredOption('--older-than <duration>', 'prune work that ended before now minus this (30d, 12h, 90m)')
    .option(
      '--batch-size <n>',
      'jobs looked at per batch, one short transaction each (1-10000)',
      intArg('--batch-size', 1, 10_000),
      500,
    )
    .option('--dry-run', 'count what would be removed; change nothing')
    .addHelpText(
      'after',
      examples(
        'canon prune --older-than 30d --dry-run',
        'canon prune --older-than 30d',
        'canon prune --older-than 7d --json',
      ) +
        '\n\nAn entity is pruned as a whole, once every one of its jobs ended (succeeded, failed or cancelled)' +
        '\nbefore the horizon, none is open, no retry or cancel names them, and its events have all their jobs.' +
        '\nIts derived status, canon trace, diagnose and provenance keep answering from the ledger and the' +
        "\nentity's tally (canon.entity_pruned). Each run is a row in canon.prune_runs. SIGINT stops after the" +
        '\nbatch in hand. Exit 0 done, 2 bad arguments, 3 database unavailable.',
    )
    .action(
      run(async (ctx: Ctx, opts: { olderThan: string; batchSize: number; dryRun?: boolean }) => {
        const olderThan = parseDuration('--older-than', opts.olderThan);
        if (!(olderThan > 0)) throw usageError(`--older-than must be more than 0, got "${opts.olderThan}"`);
        const db = await ctx.db();
        let bar: Progress | undefined;
        let stop = false;
        const onSignal = () => {
          stop = true;
        };
        process.once('SIGINT', onSignal);
        try {
          const s = await prune(db.pool, {
            olderThanSeconds: olderThan,
            batchSize: opts.batchSize,
            dryRun: opts.dryRun === true,
            stopRequested: () => stop,
            onProgress: (done, total, c) => {
              if (total < 20_000) return;
              bar ??= new Progress(opts.dryRun ? 'prune (dry run)' : 'prune', total, ctx.stderr, 'job ids');
              bar.update(done, `${c.jobs} jobs of ${c.entities} entities`);
            },
          });
          bar?.finish();
          ctx.print(s, (d) => renderPrune(d));
          return EXIT.OK;
        } finally {
          process.off('SIGINT', onSignal);
        }
      }),
    );
};

function renderPrune(s: PruneSummary): string {
  const what = `${s.jobs} jobs and ${s.runs} runs of ${s.entities} entities${s.rejections ? ` (and ${s.rejections} run rejections)` : ''}`;
  const head = s.dry_run
    ? `dry run: would remove ${what}`
    : `pruned ${what} in ${s.batches} batches (prune run ${s.run_id})`;
  return `${head}\nhorizon ${s.horizon} (older than ${fmtSecs(s.older_than_seconds)})${s.complete ? '' : '; stopped before the walk reached it: run again to go on'}`;
}
