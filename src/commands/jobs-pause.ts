// `canon jobs pause|resume <type>`: claims skip a paused type; its queued jobs wait with
// their attempts untouched until it is resumed.
import type { Command } from 'commander';
import { checkJobType, EXIT_HELP, who, withWho } from '../steering/options.js';
import { setPaused } from '../steering/pause.js';
import { when } from '../steering/render.js';
import { examples, type Register, type Run } from './types.js';

function pauseCommand(jobs: Command, run: Run, paused: boolean) {
  withWho(
    jobs
      .command(paused ? 'pause' : 'resume')
      .description(paused ? 'stop claiming jobs of a type (they stay queued)' : 'claim jobs of a paused type again')
      .argument('<job_type>', 'the job type'),
  )
    .addHelpText(
      'after',
      examples(
        paused ? 'canon jobs pause anchor --reason "TSA outage"' : 'canon jobs resume anchor --reason "TSA back"',
        `canon jobs ${paused ? 'pause' : 'resume'} anchor --json`,
      ) + EXIT_HELP,
    )
    .action(
      run(async (ctx, jobType: string, opts: { actor?: string; reason?: string }) => {
        checkJobType(jobType);
        const w = who(opts);
        const db = await ctx.db();
        const r = await setPaused(db.pool, jobType, paused, w);
        ctx.print({ ...r, actor: w.actor, reason: w.reason ?? null }, (d) => {
          if (!d.changed)
            return `${d.type} was already ${d.paused ? `paused (since ${when(d.paused_at)} by ${d.paused_by})` : 'running'}: nothing changed`;
          return d.paused
            ? `${d.type}: paused; ${d.queued} queued job(s) wait until \`canon jobs resume ${d.type}\``
            : `${d.type}: resumed; ${d.queued} queued job(s) can be claimed`;
        });
      }),
    );
}

export const register: Register = (jobs, run) => {
  pauseCommand(jobs, run, true);
  pauseCommand(jobs, run, false);
};
