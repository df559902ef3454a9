// `canon dead-jobs`: the seed's dead-jobs endpoint as a command — exact totals by type and
// reason, and the newest dead jobs with their last error, attempts and trace id.

import type { Ctx } from '../context.js';
import { CLI_NAMES, type DeadReport, listDeadJobs, parseDeadFilters } from '../observe/deadjobs.js';
import { pipelineJobType } from '../pipeline/sync.js';
import { type DeadOpts, deadRaw, pipelineOption, readsOnly } from './shared/options.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  readsOnly(program.command('dead-jobs'))
    .description('jobs that failed for good (attempts exhausted, permanent failure, TTL with no attempts left)')
    .option('--limit <n>', 'list at most n jobs (1-1000; totals stay exact)', '50')
    .option('--since-hours <h>', 'only jobs that died in the last h hours', '24')
    .option('--type <job_type>', 'only this job type')
    .addOption(pipelineOption())
    .option('--correlation-id <id>', 'only this correlation id (usually the entity id)')
    .option(
      '--reason <code>',
      'only this reason: ttl_exceeded, max_attempts_exceeded, handler_error, precondition_failed',
    )
    .addHelpText(
      'after',
      examples(
        'canon dead-jobs',
        'canon dead-jobs --since-hours 1 --type tsa --reason max_attempts_exceeded',
        'canon dead-jobs --correlation-id doc-42 --json',
      ) +
        '\n\nExit 0 with no dead jobs, 1 when there are some, 2 for a bad filter, 3 when the database is unavailable.',
    )
    .action(
      run(async (ctx: Ctx, opts: DeadOpts & { pipeline?: string }) => {
        const f = parseDeadFilters(deadRaw(opts), CLI_NAMES);
        const db = await ctx.readDb();
        const rep = await listDeadJobs(db.pool, f, { unknownType: (t) => pipelineJobType(t, opts.pipeline) });
        ctx.print(rep, (d) => renderDead(ctx, d));
        return rep.summary.total_dead > 0 ? 1 : 0;
      }),
    );
};

function renderDead(ctx: Ctx, d: DeadReport): string {
  const s = d.summary;
  const kv = (o: Record<string, number>) =>
    Object.entries(o)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || '-';
  const out = [
    `${s.total_dead} dead job(s) in the last ${d.filters.since_hours} h  by type: ${kv(s.by_type)}  by reason: ${kv(s.by_reason)}`,
  ];
  for (const j of d.jobs) {
    out.push(
      `${ctx.c.bold(`#${j.id}`)} ${j.type} ${j.entity_id}  ${j.reason ?? '-'}  attempts ${j.attempts}/${j.max_attempts}  died ${new Date(j.failed_at).toISOString()}`,
      `    trace ${j.trace_id ?? '-'}  error: ${(j.last_error ?? '-').split('\n')[0].slice(0, 200)}`,
    );
  }
  if (d.jobs.length < s.total_dead)
    out.push(`(${s.total_dead - d.jobs.length} more; raise --limit or narrow the filters)`);
  if (s.total_dead) out.push(`next: canon trace <entity_id>, then canon jobs retry <job_id> once the cause is fixed`);
  return out.join('\n');
}
