// `canon jobs pause|resume <type>`: claims skip a paused type; its queued jobs wait with
// their attempts untouched until it is resumed. A type of the configured pipeline that no
// worker has declared yet is declared first, so a fresh database can be steered.
import type { Command } from 'commander';
import { knowJobType } from '../pipeline/sync.js';
import { checkJobType, DECLARES_HELP, EXIT_HELP, who, withWho } from '../steering/options.js';
import { setPaused } from '../steering/pause.js';
import { declaredNote, when } from '../steering/render.js';
import { pipelineOption } from './shared/options.js';
import { examples, type Register, type Run } from './types.js';

function pauseCommand(jobs: Command, run: Run, paused: boolean) {
  withWho(
    jobs
      .command(paused ? 'pause' : 'resume')
      .description(paused ? 'stop claiming jobs of a type (they stay queued)' : 'claim jobs of a paused type again')
      .argument('<job_type>', 'the job type')
      .addOption(pipelineOption()),
  )
    .addHelpText(
      'after',
      examples(
        paused ? 'canon jobs pause anchor --reason "TSA outage"' : 'canon jobs resume anchor --reason "TSA back"',
        `canon jobs ${paused ? 'pause' : 'resume'} anchor --json`,
        `canon jobs ${paused ? 'pause' : 'resume'} ocr --pipeline ./pipeline.ts`,
      ) +
        DECLARES_HELP +
        EXIT_HELP,
    )
    .action(
      run(async (ctx, jobType: string, opts: { actor?: string; reason?: string; pipeline?: string }) => {
        checkJobType(jobType);
        const w = who(opts);
        const db = await ctx.db();
        const declared = await knowJobType(db.pool, jobType, opts.pipeline);
        const r = await setPaused(db.pool, jobType, paused, w);
        ctx.print({ ...r, actor: w.actor, reason: w.reason ?? null, declared_from: declared }, (d) => {
          const from = declaredNote(d.type, d.declared_from);
          if (!d.changed)
            return `${from}${d.type} was already ${d.paused ? `paused (since ${when(d.paused_at)} by ${d.paused_by})` : 'running'}: nothing changed`;
          return (
            from +
            (d.paused
              ? `${d.type}: paused; ${d.queued} queued job(s) wait until \`canon jobs resume ${d.type}\``
              : `${d.type}: resumed; ${d.queued} queued job(s) can be claimed`)
          );
        });
      }),
    );
}

export const register: Register = (jobs, run) => {
  pauseCommand(jobs, run, true);
  pauseCommand(jobs, run, false);
};
