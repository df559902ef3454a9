// `canon jobs retry | cancel`: one job by id, or every dead job matching filters. Bulk actions
// show what they will touch with --dry-run, ask y/N on a terminal and need --yes otherwise.
import readline from 'node:readline/promises';
import type { Command } from 'commander';
import { intArg, printable } from '../args.js';
import type { Ctx } from '../context.js';
import { coerceError, usageError } from '../errors.js';
import { type ActionResult, actOnJob, type JobAction, whoActs } from '../observe/actions.js';
import { CLI_NAMES, listDeadJobs, parseDeadFilters } from '../observe/deadjobs.js';
import { pipelineJobType } from '../pipeline/sync.js';
import { type DeadOpts, deadRaw, pipelineOption } from './shared/options.js';
import { examples, type Register, type Run } from './types.js';

interface ActOpts extends DeadOpts {
  pipeline?: string;
  dryRun?: boolean;
  yes?: boolean;
  actor?: string;
  message?: string;
}

const MAX_BULK = 10_000;

function define(jobs: Command, run: Run, action: JobAction, text: { desc: string; examples: string[] }) {
  jobs
    .command(action)
    .description(text.desc)
    .argument(
      '[job_id]',
      'the job; without it, every dead job matching the filters',
      intArg('job_id', 1, Number.MAX_SAFE_INTEGER),
    )
    .option('--type <job_type>', 'bulk: only dead jobs of this type')
    .addOption(pipelineOption())
    .option(
      '--reason <code>',
      'bulk: only dead jobs with this reason (ttl_exceeded, max_attempts_exceeded, handler_error, precondition_failed)',
    )
    .option('--since-hours <h>', 'bulk: only jobs that died in the last h hours', '24')
    .option('--correlation-id <id>', 'bulk: only this correlation id')
    .option('--limit <n>', `bulk: at most n jobs (1-${MAX_BULK})`, String(MAX_BULK))
    .option('--dry-run', 'show what would be done and change nothing')
    .option('-y, --yes', 'do not ask for confirmation (needed for bulk actions without a terminal)')
    .option('-m, --message <why>', 'why (recorded with the action)')
    .option('--actor <name>', 'who (default: the OS user; recorded)')
    .addHelpText(
      'after',
      `${examples(...text.examples)}\n\nExit 0 when every action succeeded, 1 when one failed, 2 for bad input (nothing changed), 3 when the database is unavailable.`,
    )
    .action(
      run((ctx: Ctx, jobId: number | undefined, opts: ActOpts, cmd: Command) => act(ctx, action, jobId, opts, cmd)),
    );
}

async function act(
  ctx: Ctx,
  action: JobAction,
  jobId: number | undefined,
  opts: ActOpts,
  cmd: Command,
): Promise<number> {
  const who = whoActs(opts);
  const bulkFlags = ['type', 'reason', 'correlationId'].filter((k) => opts[k as keyof ActOpts] !== undefined);
  const explicit = (k: string) => cmd.getOptionValueSource(k) === 'cli';
  if (jobId !== undefined && (bulkFlags.length || explicit('sinceHours') || explicit('limit'))) {
    throw usageError(
      `give either a job id or filters, not both (got job ${jobId} and --${bulkFlags[0] ?? (explicit('sinceHours') ? 'since-hours' : 'limit')})`,
    );
  }
  const db = await ctx.db();
  let ids: number[];
  if (jobId !== undefined) ids = [jobId];
  else {
    const f = parseDeadFilters(deadRaw(opts), CLI_NAMES, { limit: MAX_BULK, max: MAX_BULK });
    ids = (await listDeadJobs(db.pool, f, { unknownType: (t) => pipelineJobType(t, opts.pipeline) })).jobs.map(
      (j) => j.id,
    );
  }
  const verb = action === 'retry' ? 'retry' : 'cancel';
  if (opts.dryRun) {
    ctx.print({ dry_run: true, action, matched: ids.length, job_ids: ids }, (d) =>
      d.matched ? `would ${verb} ${d.matched} job(s): ${d.job_ids.join(', ')}` : `no job matches: nothing to ${verb}`,
    );
    return 0;
  }
  if (ids.length === 0) {
    ctx.print({ dry_run: false, action, matched: 0, results: [] }, () => `no dead job matches: nothing to ${verb}`);
    return 0;
  }
  if (jobId === undefined && !opts.yes) {
    const tty = process.stdin.isTTY && (ctx.stderr as NodeJS.WriteStream).isTTY;
    if (!tty)
      throw usageError(
        `${verb} of ${ids.length} dead job(s) needs confirmation: add --yes (or --dry-run to list them first)`,
      );
    const rl = readline.createInterface({ input: process.stdin, output: ctx.stderr });
    const answer = await rl.question(
      `${verb} ${ids.length} dead job(s) (${ids.slice(0, 10).join(', ')}${ids.length > 10 ? ', …' : ''})? [y/N] `,
    );
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) {
      ctx.info('canon: nothing changed');
      return 1;
    }
  }
  const results: (ActionResult | { job_id: number; action: JobAction; error: string })[] = [];
  for (const id of ids) {
    try {
      results.push(await actOnJob(db.pool, id, action, who));
    } catch (e) {
      // one id: its error is the command's error; in bulk, the others still go ahead
      if (jobId !== undefined) throw e;
      results.push({ job_id: id, action, error: coerceError(e).message });
    }
  }
  const failed = results.filter((r) => 'error' in r).length;
  ctx.print({ dry_run: false, action, matched: ids.length, failed, results }, (d) =>
    d.results
      .map((r) =>
        'error' in r
          ? `job ${r.job_id}: not ${verb === 'retry' ? 'retried' : 'cancelled'}: ${printable(r.error, 200)}`
          : r.action === 'retry'
            ? `job ${r.job_id} (${r.from_status}) retried as job ${r.new_job_id}${r.event_position ? ` (event ${r.event_position})` : ''}`
            : `job ${r.job_id} (${r.from_status}) cancelled`,
      )
      .join('\n'),
  );
  return failed ? 1 : 0;
}

export const register: Register = (jobs, run) => {
  define(jobs, run, 'retry', {
    desc: 'retry a dead job through the gateway (a new job; the old one is kept), or every dead job matching filters',
    examples: [
      'canon jobs retry 42 -m "TSA key rotated"',
      'canon jobs retry --type tsa --reason handler_error --since-hours 2 --dry-run',
      'canon jobs retry --type tsa --yes',
    ],
  });
  define(jobs, run, 'cancel', {
    desc: 'cancel a queued or running job, or acknowledge a dead one (it stops counting as dead)',
    examples: [
      'canon jobs cancel 42 -m "duplicate upload"',
      'canon jobs cancel --reason precondition_failed --dry-run',
      'canon jobs cancel --type anchor --since-hours 48 --yes',
    ],
  });
};
