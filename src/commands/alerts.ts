// `canon alerts`: the seeds' and the RFC's alerts evaluated now, each naming its runbook.

import type { Ctx } from '../context.js';
import { EXIT } from '../errors.js';
import { evaluateAlerts, worstSeverity } from '../observe/alerts.js';
import { computeHealth } from '../observe/health.js';
import { PLUGIN_HELP, rejectStrayArgs, runPlugin } from '../observe/plugin.js';
import { parseThresholds } from '../observe/thresholds.js';
import { readsOnly, thresholdOption } from './shared/options.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  readsOnly(program.command('alerts'))
    .description(
      'evaluate the alerts (backlog, success rate, duplicates, gap, stuck, dead, trace policy, bypass, paused types, breakers, auto-rollbacks, ledger edits) now',
    )
    .addOption(thresholdOption())
    .option('--firing', 'list only the alerts that fire')
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText(
      'after',
      `${examples('canon alerts', 'canon alerts --firing --json', 'canon alerts --threshold queued_max=1000 --threshold dead_max=5', '*/2 * * * * canon alerts --firing || notify-oncall')}\n${PLUGIN_HELP}`,
    )
    .action(
      run(async (ctx: Ctx, opts: { threshold?: string[]; firing?: boolean }, cmd) => {
        return runPlugin(ctx, async () => {
          rejectStrayArgs(cmd);
          const t = parseThresholds(opts.threshold, EXIT.USAGE);
          const db = await ctx.readDb();
          const h = await computeHealth(db.pool, t);
          const all = evaluateAlerts(h, t);
          const firing = all.filter((a) => a.firing);
          const status = worstSeverity(firing);
          const shown = opts.firing ? firing : all;
          const line = `CANON ${status} - ${firing.length ? `${firing.length} of ${all.length} alerts firing: ${firing.map((a) => `${a.name} (${a.severity})`).join(', ')}` : `none of ${all.length} alerts firing`}`;
          return {
            status,
            line,
            data: { checked_at: h.checked_at, firing: firing.length, alerts: shown, thresholds: t },
            details: (d) =>
              d.alerts
                .map(
                  (a) =>
                    `${a.firing ? (a.severity === 'critical' ? ctx.c.red('FIRING  ') : ctx.c.yellow('FIRING  ')) : ctx.c.green('ok      ')}${a.name.padEnd(26)} ${a.firing ? `${a.summary} → ${a.runbook}` : `value ${a.value} (fires ${a.threshold})`}`,
                )
                .join('\n'),
          };
        });
      }),
    );
};
