// Small text helpers for the dashboard: sparklines, ages, percentages and identifiers short
// enough for an 80-column row. Pure functions, so the component tests pin them down.
import { printable } from '../args.js';
import { fmtAge } from '../format.js';

export { fmtAge };

const BARS = '▁▂▃▄▅▆▇█';

/**
 * One character per value, scaled to the largest. Zero is the lowest bar and any non-zero
 * value at least the second, so a single failure in a quiet half hour still shows.
 */
export function sparkline(values: number[]): string {
  const max = Math.max(0, ...values);
  return values
    .map((v) => {
      if (!(v > 0) || max === 0) return BARS[0];
      return BARS[Math.max(1, Math.min(BARS.length - 1, Math.round((v / max) * (BARS.length - 1))))];
    })
    .join('');
}

export function pct(rate: number | null | undefined): string {
  return rate === null || rate === undefined ? '—' : `${(rate * 100).toFixed(1)}%`;
}

/** Seconds since an ISO time, relative to `now` (ms). */
export function secondsSince(iso: string | null | undefined, now: number): number | null {
  if (!iso) return null;
  return Math.max(0, (now - Date.parse(iso)) / 1000);
}

export function ago(iso: string | null | undefined, now: number): string {
  const s = secondsSince(iso, now);
  return s === null ? '—' : `${fmtAge(s)} ago`;
}

export function clock(iso: string | null | undefined): string {
  return iso ? new Date(iso).toISOString().slice(11, 19) : '—';
}

/**
 * Worker and trace ids carry a 36-character uuid (`execute-<uuid>-<job>-<attempt>`); the
 * first 8 hex digits tell workers apart on one screen, the full id is in the job view.
 */
export function shortId(id: string | null | undefined): string {
  if (!id) return '—';
  return id.replace(/^([a-z]+)-([0-9a-f]{8})[0-9a-f-]{28}/, '$1-$2…');
}

/** One line of free text (errors carry newlines and control characters). */
export function oneLine(s: string | null | undefined, max = 500): string {
  return printable((s ?? '').replace(/\s*\n\s*/g, ' ⏎ '), max);
}

export function pad(s: string, width: number): string {
  if (s.length > width) return width > 1 ? `${s.slice(0, width - 1)}…` : s.slice(0, width);
  return s.padEnd(width);
}

export function padStart(s: string, width: number): string {
  return s.length >= width ? s : s.padStart(width);
}

/** Splits text into at most `lines` rows of `width` characters (the last one ends in … when cut). */
export function wrap(text: string, width: number, lines: number): string[] {
  const w = Math.max(1, width);
  const out: string[] = [];
  for (let rest = text; rest.length > 0 && out.length < lines; rest = rest.slice(w)) out.push(rest.slice(0, w));
  if (text.length > w * lines && out.length) out[out.length - 1] = `${out[out.length - 1].slice(0, w - 1)}…`;
  return out;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
