// Durations as people read them: ETAs and elapsed times of long commands (fmtSecs), ages of
// jobs, workers and snapshots (fmtAge). Shared by the commands and the dashboard.

export function fmtSecs(s: number): string {
  if (!Number.isFinite(s)) return '--';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.round((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function fmtAge(s: number): string {
  if (s < 1) return `${Math.round(s * 1000)}ms`;
  if (s < 120) return `${Math.round(s * 10) / 10}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 360) / 10}h`;
}
