// Counts the reliability suite prints (and docs/RELIABILITY.md tabulates): how many runs,
// faults and inputs were tried and how many were lost, doubled, leaked or crashed.
import fs from 'node:fs';

export interface Counts {
  runs: number;
  faults?: number;
  lost?: number;
  doubled?: number;
  partial?: number;
  leaked_secrets?: number;
  stack_traces?: number;
  [k: string]: number | undefined;
}

/** One line per scenario on stdout; with CANON_RELIABILITY_OUT also appended to that file as JSON. */
export function report(scenario: string, counts: Counts): void {
  const line = { scenario, ...counts, at: new Date().toISOString() };
  console.log(
    `reliability ${scenario}: ${Object.entries(counts)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );
  const out = process.env.CANON_RELIABILITY_OUT;
  if (out) fs.appendFileSync(out, `${JSON.stringify(line)}\n`);
}

/** A stack trace in output: "    at fn (file.js:1:2)" lines, or Node's uncaught-error banner. */
export function hasStackTrace(text: string): boolean {
  return (
    /^\s+at .+(\.[cm]?[jt]s|<anonymous>|node:[a-z_/]+):\d+/m.test(text) ||
    /^\S+Error: .*\n\s+at /m.test(text) ||
    /node:internal\/process/.test(text)
  );
}

/** Soak: CANON_SOAK=N multiplies the default sizes by N (CANON_SOAK=10 for a long run); unset, `npm test` stays short. */
export function soak(base: number): number {
  const f = Number(process.env.CANON_SOAK ?? 1);
  return Math.max(1, Math.round(base * (Number.isFinite(f) && f > 0 ? f : 1)));
}
