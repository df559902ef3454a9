// `canon diagnose <entity_id>`: one verdict for one entity, its evidence, the next command.
import { checkEntityId } from '../args.js';
import type { Ctx } from '../context.js';
import { EXIT } from '../errors.js';
import { diagnose } from '../observe/diagnose.js';
import { parseThresholds } from '../observe/thresholds.js';
import { thresholdOption } from './shared/options.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  program
    .command('diagnose')
    .description(
      'why an entity is where it is: not enqueued, enqueued and not executed, executed without result event, dead, stuck, paused, ...',
    )
    .argument('<entity_id>')
    .addOption(thresholdOption())
    .addHelpText(
      'after',
      examples(
        'canon diagnose doc-42',
        'canon diagnose doc-42 --json | jq -r .verdict',
        'canon diagnose doc-42 --threshold gap_grace_seconds=10',
      ) +
        '\n\nA missing job and a lane without a live worker are reported at once; gap_grace_seconds only words how unusual a finding is.' +
        '\nExit 0 when nothing is wrong (done, idle, in progress, retrying), 1 when the verdict is a problem, 2 for an unknown entity or bad option, 3 when the database is unavailable.',
    )
    .action(
      run(async (ctx: Ctx, entityId: string, opts: { threshold?: string[] }) => {
        checkEntityId(entityId);
        const t = parseThresholds(opts.threshold, EXIT.USAGE);
        const db = await ctx.db();
        const d = await diagnose(db.pool, entityId, t);
        ctx.print(d, (x) =>
          [
            `${x.problem ? ctx.c.red(x.verdict.toUpperCase()) : ctx.c.green(x.verdict.toUpperCase())} ${x.entity_id}: ${x.summary}`,
            ...x.evidence.map((e) => `  - ${e}`),
            ...x.next.map((n, i) => `${i === 0 ? 'next:' : '     '} ${n}`),
            `runbook: ${x.runbook}`,
          ].join('\n'),
        );
        return d.problem ? EXIT.FAILURE : EXIT.OK;
      }),
    );
};
