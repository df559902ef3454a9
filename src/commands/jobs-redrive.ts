// `canon jobs redrive <entity_id>`: enqueue, through the gateway, the jobs an entity's events
// are missing (the not-enqueued verdict of `canon diagnose`), each recorded as a job action.
import { checkEntityId, printable } from '../args.js';
import type { Ctx } from '../context.js';
import { whoActs } from '../observe/actions.js';
import { redrive } from '../observe/redrive.js';
import { examples, type Register } from './types.js';

interface RedriveOpts {
  dryRun?: boolean;
  actor?: string;
  message?: string;
}

export const register: Register = (jobs, run) => {
  jobs
    .command('redrive')
    .description(
      "enqueue an entity's missing jobs through the gateway: for each event without its job (diagnose: NOT_ENQUEUED), the job the decider or the core trigger would have made",
    )
    .argument('<entity_id>', 'the entity whose events have no job')
    .option('--dry-run', 'show the jobs it would enqueue and change nothing')
    .option('-m, --message <why>', 'why (recorded with the action)')
    .option('--actor <name>', 'who (default: the OS user; recorded)')
    .addHelpText(
      'after',
      `${examples('canon jobs redrive doc-42 --dry-run', 'canon jobs redrive doc-42 -m "trigger was off during the bulk load"', 'canon jobs redrive doc-42 --json')}

A required event gets its execution job (its dedupe key, payload and position as source); the
other events without a decision get one decision, which reads the whole history. Refused when
nothing is missing, for instance while a decision about the entity is queued or running.
Exit 0 when the jobs were enqueued (or would be, with --dry-run), 2 when refused or for bad
input (nothing changed), 3 when the database is unavailable.`,
    )
    .action(
      run(async (ctx: Ctx, entityId: string, opts: RedriveOpts) => {
        checkEntityId(entityId);
        const who = whoActs(opts);
        const db = await ctx.db();
        const r = await redrive(db.pool, entityId, who, { dryRun: !!opts.dryRun });
        ctx.print(r, (d) =>
          d.jobs
            .map((j) => {
              const what = `${j.type} [${j.lane}] for event ${j.source_event_position} ${j.source_kind}${j.dedupe_key ? ` (dedupe ${printable(j.dedupe_key, 80)})` : ''}`;
              if (d.dry_run) return `would enqueue ${what}`;
              return j.created
                ? `enqueued job #${j.job_id} ${what}, recorded as action #${j.action_id}`
                : `job #${j.job_id} ${what} was already queued or running: nothing enqueued`;
            })
            .join('\n'),
        );
        return 0;
      }),
    );
};
