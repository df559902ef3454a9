// `canon flags …`: see and steer feature flags. Every change records actor and reason in
// flag_changes; rollback walks that history back; kill holds the queued jobs a flag allowed.
import type { Command } from 'commander';
import { parseDuration } from '../args.js';
import type { Ctx } from '../context.js';
import type { Db } from '../db/connect.js';
import { usageError } from '../errors.js';
import type { Who } from '../steering/common.js';
import {
  type ChangeResult,
  changeFlag,
  createFlag,
  type FlagAction,
  flagHistory,
  getFlag,
  killPreview,
  listFlags,
  releaseFlag,
  rollbackFlag,
} from '../steering/flags.js';
import { parseGuard } from '../steering/guard.js';
import { checkFlagName, EXIT_HELP, who, wholeNumber, withWho } from '../steering/options.js';
import { describeState, duration, renderFlag, renderFlags, renderHistory } from '../steering/render.js';
import { startAutoRollout, stopAutoRollout } from '../steering/rollout.js';
import { examples, type Register, type Run } from './types.js';

type WhoOpts = { actor?: string; reason?: string };

interface FlagCommand<T> {
  name: string;
  description: string;
  examples: string[];
  options?: (cmd: Command) => Command;
  act: (db: Db, flag: string, who: Who, opts: WhoOpts & Record<string, unknown>) => Promise<T>;
  human: (d: T, ctx: Ctx) => string;
}

/** A steering command on one flag: <flag>, --actor, --reason, checked input, one result. */
function flagCommand<T>(flags: Command, run: Run, spec: FlagCommand<T>): void {
  const cmd = withWho(flags.command(spec.name).description(spec.description).argument('<flag>', 'the flag name'));
  (spec.options ? spec.options(cmd) : cmd).addHelpText('after', examples(...spec.examples) + EXIT_HELP).action(
    run(async (ctx, name: string, opts: WhoOpts & Record<string, unknown>) => {
      checkFlagName(name);
      const w = who(opts);
      const db = await ctx.db();
      ctx.print(await spec.act(db, name, w, opts), (d) => spec.human(d, ctx));
    }),
  );
}

function describeChange(d: ChangeResult): string {
  const change = d.change_id ? `change #${d.change_id} by ${d.actor}` : 'no change: it already was in that state';
  const stopped = d.rollout_stopped ? '; its auto-rollout was stopped' : '';
  return `${d.flag.name}: ${describeState({ ...d.flag, killed: d.flag.killed_at !== null })} (${change}${stopped})`;
}

/** enable, disable and kill: one change of state. */
function simpleChange(
  flags: Command,
  run: Run,
  action: Exclude<FlagAction, 'rollout'>,
  description: string,
  example: string[],
  options?: (cmd: Command) => Command,
) {
  flagCommand<ChangeResult | { flag: string; dry_run: true; would_hold_jobs: number }>(flags, run, {
    name: action,
    description,
    examples: example,
    options,
    act: async (db, name, w, opts) =>
      opts.dryRun
        ? { flag: name, dry_run: true as const, would_hold_jobs: await killPreview(db.pool, name) }
        : changeFlag(db.pool, name, action, w),
    human: (d) =>
      'dry_run' in d
        ? `dry run: killing ${d.flag} would turn it off and hold ${d.would_hold_jobs} queued job(s)`
        : describeChange(d) +
          (action === 'kill'
            ? `; ${d.held_jobs} queued job(s) held (release: canon flags enable ${d.flag.name}, or canon flags release ${d.flag.name})`
            : ''),
  });
}

function registerRollout(flags: Command, run: Run): void {
  withWho(
    flags
      .command('rollout')
      .description('turn a flag on for a stable percentage of entities, or start a guarded auto-rollout (--auto)')
      .argument('<flag>', 'the flag name')
      .argument('[percent]', '0 to 100; with --auto, the first step (default: the current percentage plus --step)'),
  )
    .option('--auto', 'raise the percentage step by step, advanced by `canon tick`')
    .option('--step <percent>', 'with --auto: percentage points per step (default 10)')
    .option('--every <duration>', 'with --auto: time between steps, like 15m (default 15m)')
    .option('--until <percent>', 'with --auto: where to stop (default 100)')
    .option(
      '--guard <conditions>',
      'with --auto: checked over each step before the next, like "success_rate>=0.9,dead=0"; a failure rolls back to the last good percentage',
    )
    .addHelpText(
      'after',
      examples(
        'canon flags rollout D1_RUN_TSA_ENABLED 30 --reason "canary"',
        'canon flags rollout D1_RUN_TSA_ENABLED --auto --step 10 --every 15m --until 100 --guard "success_rate>=0.9,dead=0"',
      ) +
        `\n\nGuard metrics, over the execution runs of jobs decided with the flag on since the step began:
  success_rate, failure_rate (0..1), failed (runs), dead (jobs), runs (a minimum: runs>=20).
  A failing condition rolls back; too few runs only waits.` +
        EXIT_HELP,
    )
    .action(
      run(
        async (
          ctx,
          name: string,
          rawPercent: string | undefined,
          opts: WhoOpts & { auto?: boolean; step?: string; every?: string; until?: string; guard?: string },
        ) => {
          checkFlagName(name);
          const w = who(opts);
          const percent = rawPercent === undefined ? undefined : wholeNumber('percent', rawPercent, 0, 100);
          if (!opts.auto) {
            const stray = (['step', 'every', 'until', 'guard'] as const).find((k) => opts[k] !== undefined);
            if (stray) throw usageError(`--${stray} only applies with --auto`);
            if (percent === undefined)
              throw usageError('give a percentage from 0 to 100, or --auto for a gradual rollout');
            const db = await ctx.db();
            ctx.print(await changeFlag(db.pool, name, 'rollout', w, percent), describeChange);
            return;
          }
          const step = wholeNumber('--step', opts.step ?? '10', 1, 100);
          const until = wholeNumber('--until', opts.until ?? '100', 1, 100);
          const everySeconds = parseDuration('--every', opts.every ?? '15m');
          if (everySeconds < 1 || everySeconds > 30 * 86400)
            throw usageError(`--every must be from 1s to 30d, got "${opts.every}"`);
          if (percent !== undefined && (percent < 1 || percent > until))
            throw usageError(`the first step must be from 1 to --until (${until}), got ${percent}`);
          const guard = opts.guard === undefined ? undefined : parseGuard(opts.guard);
          const db = await ctx.db();
          const started = await startAutoRollout(
            db.pool,
            name,
            { start: percent, step, everySeconds, until, guard },
            w,
          );
          const flag = await getFlag(db.pool, name);
          ctx.print(
            { ...started, flag, actor: w.actor, reason: w.reason ?? null },
            (d) =>
              `${name}: auto-rollout started at ${d.to_percent}% (was ${d.from_percent}%), +${step}% every ${duration(everySeconds)} until ${until}%` +
              `${d.flag.rollout?.guard ? `, guard ${d.flag.rollout.guard}` : ''}; next step after ${d.flag.rollout?.next_step_at ? new Date(d.flag.rollout.next_step_at).toISOString() : '-'} (run \`canon tick\` from cron)`,
          );
        },
      ),
    );
}

export const register: Register = (program, run) => {
  const flags = program
    .command('flags')
    .description('feature flags: history, rollback, gradual and guarded rollout, kill switch')
    .addHelpText(
      'after',
      examples(
        'canon flags list',
        'canon flags rollout D1_RUN_TSA_ENABLED 30',
        'canon flags rollback D1_RUN_TSA_ENABLED',
        'canon flags kill D1_RUN_TSA_ENABLED --reason "TSA returns garbage"',
      ),
    );

  flags
    .command('list')
    .description('every flag with its state, rollout and held jobs')
    .addHelpText('after', examples('canon flags list', 'canon flags list --json') + EXIT_HELP)
    .action(
      run(async (ctx) => {
        const db = await ctx.db();
        ctx.print(await listFlags(db.pool), (fs) => renderFlags(fs, ctx.c));
      }),
    );

  flags
    .command('get')
    .description('one flag: state, running rollout, recent changes')
    .argument('<flag>', 'the flag name')
    .addHelpText(
      'after',
      examples('canon flags get D1_RUN_TSA_ENABLED', 'canon flags get D1_RUN_TSA_ENABLED --json') + EXIT_HELP,
    )
    .action(
      run(async (ctx, name: string) => {
        checkFlagName(name);
        const db = await ctx.db();
        const flag = await getFlag(db.pool, name);
        const recent = await flagHistory(db.pool, name, 5);
        ctx.print({ ...flag, recent_changes: recent }, (d) => renderFlag(d, recent, ctx.c));
      }),
    );

  flagCommand(flags, run, {
    name: 'create',
    description: 'declare a flag (off) outside a pipeline module',
    examples: ['canon flags create NEW_CHECKOUT --description "new checkout flow"'],
    options: (cmd) => cmd.option('--description <text>', 'what the flag turns on', ''),
    act: (db, name, w, opts) => {
      const description = String(opts.description);
      if (description.length > 500) throw usageError('--description is longer than 500 characters');
      return createFlag(db.pool, name, description, w);
    },
    human: describeChange,
  });

  simpleChange(flags, run, 'enable', 'turn a flag on for every entity (also ends a kill and releases its held jobs)', [
    'canon flags enable D1_RUN_TSA_ENABLED --reason "TSA is back"',
  ]);
  simpleChange(flags, run, 'disable', 'turn a flag off (its percentage is kept for a later rollback)', [
    'canon flags disable D1_RUN_TSA_ENABLED --reason "investigating"',
  ]);
  registerRollout(flags, run);

  flagCommand(flags, run, {
    name: 'rollback',
    description: 'restore the state before the latest change not yet undone; repeat to walk further back',
    examples: [
      'canon flags rollback D1_RUN_TSA_ENABLED',
      'canon flags rollback D1_RUN_TSA_ENABLED --reason "30% was too much"',
    ],
    act: (db, name, w) => rollbackFlag(db.pool, name, w),
    human: (d) => `${describeChange(d)}; undid change #${d.undid}`,
  });

  flags
    .command('history')
    .description("a flag's changes, newest first: who, when, through what, why")
    .argument('<flag>', 'the flag name')
    .option('--limit <n>', 'how many changes (default 50)')
    .addHelpText(
      'after',
      examples('canon flags history D1_RUN_TSA_ENABLED', 'canon flags history D1_RUN_TSA_ENABLED --limit 5 --json') +
        EXIT_HELP,
    )
    .action(
      run(async (ctx, name: string, opts: { limit?: string }) => {
        checkFlagName(name);
        const limit = wholeNumber('--limit', opts.limit ?? '50', 1, 10_000);
        const db = await ctx.db();
        ctx.print(await flagHistory(db.pool, name, limit), (rows) => renderHistory(rows, ctx.c));
      }),
    );

  simpleChange(
    flags,
    run,
    'kill',
    'kill switch: off at once, auto-rollout stopped, queued jobs the flag allowed held until it is on again or released',
    [
      'canon flags kill D1_RUN_TSA_ENABLED --reason "TSA signs with the wrong key"',
      'canon flags kill D1_RUN_TSA_ENABLED --dry-run',
    ],
    (cmd) => cmd.option('--dry-run', 'say how many queued jobs would be held; change nothing'),
  );

  flagCommand(flags, run, {
    name: 'release',
    description: 'let the jobs a kill held run, although the flag stays off',
    examples: ['canon flags release D1_RUN_TSA_ENABLED --reason "those documents are fine"'],
    act: async (db, name, w) => ({
      flag: name,
      released_jobs: await releaseFlag(db.pool, name, w),
      actor: w.actor,
      reason: w.reason ?? null,
    }),
    human: (d) => `${d.flag}: released ${d.released_jobs} held job(s)`,
  });

  flagCommand(flags, run, {
    name: 'stop',
    description: 'stop an auto-rollout and leave the flag at its current percentage',
    examples: ['canon flags stop D1_RUN_TSA_ENABLED --reason "hold at 40% over the weekend"'],
    act: async (db, name, w) => ({
      flag: name,
      stopped: true,
      percent: await stopAutoRollout(db.pool, name, w),
      actor: w.actor,
      reason: w.reason ?? null,
    }),
    human: (d) => `${d.flag}: auto-rollout stopped at ${d.percent}%`,
  });
};
