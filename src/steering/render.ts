// Human renderings of steering data (--json prints the data itself).
import type { ChalkInstance } from 'chalk';
import type { Breaker } from './breakers.js';
import type { Flag, FlagChange, FlagState } from './flags.js';

export function when(d: Date | string | null | undefined): string {
  if (!d) return '-';
  return new Date(d)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

/** The line a steering command prints first when it declared the type it was asked about. */
export const declaredNote = (type: string, from: string | null): string =>
  from ? `${type}: declared from pipeline ${from} (no worker had declared it yet)\n` : '';

export function duration(seconds: number): string {
  const s = Number(seconds);
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (s >= size && s % size === 0) return `${s / size}${unit}`;
  }
  return `${s}s`;
}

export function describeState(s: FlagState | null): string {
  if (!s) return '(none)';
  if (s.killed) return 'killed (off)';
  if (!s.enabled)
    return s.strategy === 'gradual' && s.rollout_percent < 100 ? `off (was ${s.rollout_percent}%)` : 'off';
  return s.rollout_percent >= 100 ? 'on' : `on for ${s.rollout_percent}%`;
}

function flagState(f: Flag): FlagState {
  return { enabled: f.enabled, rollout_percent: f.rollout_percent, strategy: f.strategy, killed: f.killed_at !== null };
}

function notes(f: Flag): string {
  const out: string[] = [];
  if (f.rollout) {
    const r = f.rollout;
    out.push(
      `auto-rollout → ${r.until_percent}% (+${r.step_percent}% every ${duration(r.every_seconds)}${r.guard ? `, guard ${r.guard}` : ''}; next ${when(r.next_step_at)})`,
    );
  }
  if (f.killed_at) out.push(`killed by ${f.killed_by} at ${when(f.killed_at)}`);
  if (f.held_jobs) out.push(`${f.held_jobs} job(s) held`);
  return out.join('; ');
}

export function renderFlags(flags: Flag[], c: ChalkInstance): string {
  if (flags.length === 0) return 'no flags (the pipeline declares them, or `canon flags create NAME`)';
  const w = Math.max(4, ...flags.map((f) => f.name.length));
  const head = c.bold(`${'FLAG'.padEnd(w)}  ${'STATE'.padEnd(14)}  ${'UPDATED'.padEnd(20)}  BY`);
  const rows = flags.map((f) => {
    const st = describeState(flagState(f)).padEnd(14);
    const colored = f.killed_at ? c.red(st) : f.enabled ? c.green(st) : c.dim(st);
    const n = notes(f);
    return `${f.name.padEnd(w)}  ${colored}  ${when(f.updated_at).padEnd(20)}  ${f.updated_by}${n ? c.yellow(`  ${n}`) : ''}`;
  });
  return [head, ...rows].join('\n');
}

export function renderFlag(f: Flag, recent: FlagChange[], c: ChalkInstance): string {
  const lines = [
    `${c.bold(f.name)}: ${describeState(flagState(f))} (strategy ${f.strategy}, ${f.rollout_percent}%)`,
    f.description ? `  ${f.description}` : '',
    `  updated ${when(f.updated_at)} by ${f.updated_by}`,
    notes(f) ? `  ${notes(f)}` : '',
    recent.length
      ? `  recent changes:\n${renderHistory(recent, c)
          .split('\n')
          .map((l) => `    ${l}`)
          .join('\n')}`
      : '',
  ];
  return lines.filter(Boolean).join('\n');
}

export function renderHistory(changes: FlagChange[], c: ChalkInstance): string {
  if (changes.length === 0) return 'no changes recorded';
  return changes
    .map((ch) => {
      const what = ch.before
        ? `${describeState(ch.before)} → ${describeState(ch.after)}`
        : `created ${describeState(ch.after)}`;
      const undo = ch.undoes ? ` (undoes #${ch.undoes})` : '';
      const reason = ch.reason ? c.dim(`  "${ch.reason}"`) : '';
      return `#${String(ch.id).padEnd(5)} ${when(ch.at)}  ${ch.actor.padEnd(12)} ${ch.source.padEnd(13)} ${what}${undo}${reason}`;
    })
    .join('\n');
}

export function renderBreakers(list: Breaker[], c: ChalkInstance): string {
  if (list.length === 0) return 'no execution job types are declared';
  const w = Math.max(8, ...list.map((b) => b.job_type.length));
  const head = c.bold(`${'JOB TYPE'.padEnd(w)}  ${'STATE'.padEnd(9)}  FAILURES  QUEUED  DETAIL`);
  const rows = list.map((b) => {
    const st = b.state.padEnd(9);
    const colored = b.state === 'closed' ? c.green(st) : b.state === 'open' ? c.red(st) : c.yellow(st);
    const detail =
      b.state === 'open'
        ? `probe after ${when(b.next_attempt_at)}; ${b.reason ?? ''}`
        : b.state === 'half_open'
          ? `probe job ${b.probe_job_id} running; ${b.reason ?? ''}`
          : `opens after ${b.threshold} consecutive failures, cooldown ${duration(b.cooldown_seconds)}`;
    return `${b.job_type.padEnd(w)}  ${colored}  ${`${b.failure_count}/${b.threshold}`.padEnd(8)}  ${String(b.queued).padEnd(6)}  ${detail}${b.paused ? c.yellow(' (type paused)') : ''}`;
  });
  return [head, ...rows].join('\n');
}
