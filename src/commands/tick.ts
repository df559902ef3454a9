// `canon tick`: one command for cron (the seeds' WakeExecutionEngine, every 30 s or so).
import { intArg, numberArg } from '../args.js';
import { createLogger } from '../engine/log.js';
import { tick } from '../engine/tick.js';
import { pipelineOption } from './shared/options.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  program
    .command('tick')
    .description('rescue stuck runs, advance flag rollouts, and run a bounded batch of work inline')
    .option('--max-jobs <n>', 'jobs to run inline at most', intArg('--max-jobs', 0, 1_000_000), 200)
    .option('--max-seconds <s>', 'seconds to spend on inline work at most', numberArg('--max-seconds', 0, 3600), 20)
    .option('--concurrency <n>', 'jobs run at once', intArg('--concurrency', 1, 256), 4)
    .addOption(pipelineOption())
    .addHelpText(
      'after',
      examples(
        'canon tick',
        '* * * * * cd /srv/app && canon tick --json >> /var/log/canon-tick.log',
        'canon tick --max-jobs 0   # only rescue and rollouts',
      ) +
        '\n\nOverlapping ticks never double work: a tick that finds another one running exits 0 with "skipped".\nExit 0 when the tick ran (or was skipped), 1 when it failed, 3 when the database is unavailable.',
    )
    .action(
      run(async (ctx, o: { maxJobs: number; maxSeconds: number; concurrency: number; pipeline?: string }) => {
        const log = createLogger({ level: ctx.json ? 'silent' : 'warn' });
        const s = await tick(ctx, { ...o, pipelinePath: o.pipeline, log });
        ctx.print(s, (d) =>
          d.skipped
            ? 'tick skipped: another tick holds the lock'
            : `tick: rescued ${d.rescued.total} (${d.rescued.retry} retry, ${d.rescued.dead} dead); rollouts ${d.rollouts.length}; ran ${d.work.claimed} job(s): ${d.work.succeeded} ok, ${d.work.retried} retry, ${d.work.dead} dead, ${d.work.fenced} fenced; ${d.seconds.toFixed(2)}s`,
        );
        return tickExitCode(s);
      }),
    );
};

const tickExitCode = (s: { work: { errors: number } }) => (s.work.errors > 0 ? 1 : 0);
