// `canon health`: the seed's health endpoint as a command, with monitoring-plugin exit codes.

import type { Ctx } from '../context.js';
import { EXIT } from '../errors.js';
import { fmtAge } from '../format.js';
import { computeHealth, healthStatusLine } from '../observe/health.js';
import { describeHolder, oldestHolder } from '../observe/horizon.js';
import { PLUGIN_HELP, rejectStrayArgs, runPlugin } from '../observe/plugin.js';
import { parseThresholds } from '../observe/thresholds.js';
import type { Health } from '../observe/types.js';
import { readsOnly, thresholdOption } from './shared/options.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  readsOnly(program.command('health'))
    .description(
      'queued, running, stuck and dead jobs, lag, event_to_job_gap, throughput, workers, gateway, steering, ledger edits',
    )
    .addOption(thresholdOption())
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText(
      'after',
      `${examples('canon health', 'canon health --json | jq .estimated_lag_seconds', 'canon health --threshold lag_warning_seconds=30 --threshold gap_grace_seconds=120')}\n${PLUGIN_HELP}`,
    )
    .action(
      run(async (ctx: Ctx, opts: { threshold?: string[] }, cmd) => {
        return runPlugin(ctx, async () => {
          rejectStrayArgs(cmd);
          const t = parseThresholds(opts.threshold, EXIT.USAGE);
          const db = await ctx.readDb();
          const h = await computeHealth(db.pool, t);
          return { status: h.status, line: healthStatusLine(h), data: h, details: (d) => renderHealth(ctx, d) };
        });
      }),
    );
};

function renderHealth(ctx: Ctx, h: Health): string {
  const c = ctx.c;
  const byType = Object.entries(h.jobs_queued.by_type)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(
      ([t, n]) =>
        `${t} ${n}${h.oldest_queued_age_seconds[t] !== undefined ? ` (oldest ready ${fmtAge(h.oldest_queued_age_seconds[t])})` : ''}`,
    )
    .join(', ');
  const rate = (r: number | null) => (r === null ? '-' : `${(r * 100).toFixed(1)}%`);
  const lines = [
    `queued          ${h.jobs_queued.total}${byType ? `  (${byType})` : ''}`,
    `processing      ${h.jobs_processing.count} (avg age ${fmtAge(h.jobs_processing.avg_age_seconds)})`,
    `stuck           ${h.stuck_count ? c.red(String(h.stuck_count)) : '0'}`,
    `dead (24 h)     ${h.dead_last_24h ? c.yellow(String(h.dead_last_24h)) : '0'}`,
    `estimated lag   ${fmtAge(h.estimated_lag_seconds)}`,
    `event→job gap   ${h.event_to_job_gap ? c.red(String(h.event_to_job_gap)) : '0'} (decision ${h.event_to_job_gap_by_lane.decision}, execution ${h.event_to_job_gap_by_lane.execution})`,
    `runs 5 min      ${h.throughput.last_5m.runs_finished} finished, ${h.throughput.last_5m.per_minute}/min, success ${rate(h.throughput.last_5m.success_rate)}`,
    `runs 1 h        ${h.throughput.last_1h.runs_finished} finished, ${h.throughput.last_1h.per_minute}/min, success ${rate(h.throughput.last_1h.success_rate)}`,
    `workers alive   ${h.workers.alive}${
      Object.keys(h.workers.by_role).length
        ? ` (${Object.entries(h.workers.by_role)
            .map(([r, n]) => `${r} ${n}`)
            .join(', ')})`
        : ''
    }${h.workers.stale ? `, ${h.workers.stale} stale` : ''}`,
    `gateway         ${h.gateway.mode}, ${h.gateway.bypass_count} bypass(es) (${h.gateway.bypass_last_24h} in 24 h)`,
    `core trigger    ${h.core_trigger_enabled ? 'enabled' : c.red('DISABLED')}`,
    ...steeringLines(ctx, h),
    ...horizonLines(h),
    `runtime         ${h.runtime_version}`,
    ...replicaLine(ctx, h),
  ];
  for (const p of h.problems)
    lines.push(
      `${p.severity === 'critical' ? c.red('CRITICAL') : c.yellow('WARNING')} ${p.alert}: ${p.summary} → ${p.runbook}`,
    );
  return lines.join('\n');
}

/** What steering holds back and the ledger's edit register, one line each. */
function steeringLines(ctx: Ctx, h: Health): string[] {
  const c = ctx.c;
  const s = h.steering;
  const list = (items: string[], none: string) => (items.length ? items.join(', ') : none);
  const e = h.ledger_edits;
  return [
    `paused types    ${list(
      s.paused_types.map(
        (p) =>
          `${c.yellow(p.job_type)} (${p.queued} queued${p.paused_by ? `, by ${p.paused_by}` : ''}${p.reason ? `: ${p.reason}` : ''})`,
      ),
      'none',
    )}`,
    `breakers        ${list(
      s.breakers_not_closed.map(
        (b) =>
          `${c.yellow(b.job_type)} ${b.state === 'half_open' ? 'half-open' : 'open'} (${b.failure_count} failures)`,
      ),
      'all closed',
    )}`,
    `held jobs       ${s.held_jobs.total}${
      s.held_jobs.total
        ? ` (${Object.entries(s.held_jobs.by_flag)
            .map(([f, n]) => `${f} ${n}`)
            .join(', ')})`
        : ''
    }`,
    `rollouts        ${list(
      s.rollouts_running.map(
        (r) =>
          `${r.flag} at ${r.current_percent}% → ${r.until_percent}% (step ${r.step_percent}%${r.guard ? `, guard ${r.guard}` : ''})`,
      ),
      'none running',
    )}`,
    `auto rollbacks  ${list(
      s.auto_rollbacks_24h.map((r) => `${c.yellow(r.flag)} ${r.from_percent}% → ${r.to_percent}%`),
      'none',
    )} (24 h)`,
    `ledger edits    ${e.refused_new ? c.yellow(`${e.refused_new} refused`) : '0 refused'}, ${e.bypass_new ? c.red(`${e.bypass_new} with triggers bypassed`) : '0 with triggers bypassed'} since the last ack (${e.refused_total} and ${e.bypass_total} in all)`,
  ];
}

/** Who holds the MVCC horizon back, and how dead the hot tables are. */
function horizonLines(h: Health): string[] {
  const x = oldestHolder(h.horizon);
  const tables = h.horizon.hot_tables.map((t) => `${t.table} ${(t.dead_ratio * 100).toFixed(1)}% dead`).join(', ');
  return [
    `horizon         ${x ? `oldest ${describeHolder(x)}${x.seconds === null ? '' : `, open ${fmtAge(x.seconds)}`}, xmin age ${x.xmin_age}` : 'nothing holds a snapshot'}`,
    `hot tables      ${tables || 'no statistics yet'}`,
  ];
}

/** Read from a standby (--read-url): how far behind the primary every number above is. */
function replicaLine(ctx: Ctx, h: Health): string[] {
  const r = h.replica;
  if (!r) return [];
  const lag = r.lag_seconds === null ? ctx.c.yellow('unknown') : fmtAge(r.lag_seconds);
  return [
    `replica lag     ${lag} (standby; ${r.replay_behind_bytes} bytes received, not replayed; receiver ${r.receiver}${r.last_replayed_at ? `; last commit replayed ${new Date(r.last_replayed_at).toISOString()}` : ''})`,
  ];
}
