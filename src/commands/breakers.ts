// `canon breakers list|open|close`: the circuit breakers of the execution job types. The
// accounting is automatic (in Postgres); these commands show it and let an operator decide.
import type { Command } from 'commander';
import { parseDuration } from '../args.js';
import { usageError } from '../errors.js';
import { knowJobType } from '../pipeline/sync.js';
import { forceBreaker, listBreakers } from '../steering/breakers.js';
import { checkJobType, DECLARES_HELP, EXIT_HELP, who, withWho } from '../steering/options.js';
import { declaredNote, renderBreakers, when } from '../steering/render.js';
import { pipelineOption } from './shared/options.js';
import { examples, type Register, type Run } from './types.js';

function force(breakers: Command, run: Run, state: 'open' | 'closed', description: string, example: string[]) {
  const cmd = withWho(
    breakers
      .command(state === 'open' ? 'open' : 'close')
      .description(description)
      .argument('<job_type>', 'an execution job type')
      .addOption(pipelineOption()),
  );
  if (state === 'open')
    cmd.option('--for <duration>', "how long before a probe may close it again (default: the type's cooldown)");
  cmd.addHelpText('after', examples(...example) + DECLARES_HELP + EXIT_HELP).action(
    run(async (ctx, jobType: string, opts: { actor?: string; reason?: string; for?: string; pipeline?: string }) => {
      checkJobType(jobType);
      const w = who(opts);
      const seconds = opts.for === undefined ? undefined : parseDuration('--for', opts.for);
      if (seconds !== undefined && (seconds < 1 || seconds > 365 * 86400))
        throw usageError(`--for must be from 1s to 365d, got "${opts.for}"`);
      const db = await ctx.db();
      const declared = await knowJobType(db.pool, jobType, opts.pipeline);
      const b = await forceBreaker(db.pool, jobType, state, w, seconds);
      ctx.print(
        { ...b, actor: w.actor, reason: w.reason ?? null, declared_from: declared },
        (d) =>
          declaredNote(d.job_type, d.declared_from) +
          (d.state === 'open'
            ? `${d.job_type}: breaker open; its jobs stay queued; a probe may run after ${when(d.next_attempt_at)}`
            : `${d.job_type}: breaker closed; its jobs run again`),
      );
    }),
  );
}

export const register: Register = (program, run) => {
  const breakers = program
    .command('breakers')
    .description('circuit breakers per job type: open after N consecutive failures, one probe after the cooldown')
    .addHelpText(
      'after',
      examples(
        'canon breakers list',
        'canon breakers open anchor --for 10m --reason "TSA down"',
        'canon breakers close anchor',
      ),
    );

  breakers
    .command('list')
    .description('every execution job type with its breaker state, failure count and queued jobs')
    .addHelpText('after', examples('canon breakers list', 'canon breakers list --json') + EXIT_HELP)
    .action(
      run(async (ctx) => {
        const db = await ctx.db();
        ctx.print(await listBreakers(db.pool), (list) => renderBreakers(list, ctx.c));
      }),
    );

  force(breakers, run, 'open', "open a breaker by hand: the type's jobs stay queued without spending attempts", [
    'canon breakers open anchor --reason "anchoring service maintenance"',
    'canon breakers open anchor --for 1h',
  ]);
  force(breakers, run, 'closed', 'close a breaker by hand: failure count reset, the type runs again', [
    'canon breakers close anchor --reason "service restored"',
  ]);
};
