// The rollout guard: a small, strict grammar, parsed here and evaluated in SQL
// (canon.guard_verdict) over the step's window.
//
//   guard     = condition ("," condition)*
//   condition = metric op number
//   metric    = success_rate | failure_rate   (fractions 0..1 of the finished runs)
//             | failed | dead                 (counts: failed runs, jobs that died)
//             | runs                          (finished runs: a minimum of evidence, >= or > only)
//   op        = ">=" | "<=" | ">" | "<" | "="
//
// A failing rate or count rolls the flag back; too few runs (a rate without runs, or `runs`
// below its minimum) only waits, since little traffic is no evidence of harm.
import { printable } from '../args.js';
import { usageError } from '../errors.js';

export const GUARD_METRICS = ['success_rate', 'failure_rate', 'failed', 'dead', 'runs'] as const;
export type GuardMetric = (typeof GUARD_METRICS)[number];
export type GuardOp = '>=' | '<=' | '>' | '<' | '=';

export interface GuardCondition {
  metric: GuardMetric;
  op: GuardOp;
  value: number;
}

const CONDITION = /^\s*([A-Za-z_]+)\s*(>=|<=|>|<|=)\s*(\d+(?:\.\d+)?)\s*$/;
const RATES: readonly string[] = ['success_rate', 'failure_rate'];
const MAX_CONDITIONS = 10;

export function parseGuard(text: string): GuardCondition[] {
  const shape = 'write conditions like "success_rate>=0.9,dead=0"';
  if (text.trim() === '') throw usageError(`--guard is empty: ${shape}`);
  const parts = text.split(',');
  if (parts.length > MAX_CONDITIONS)
    throw usageError(`--guard has ${parts.length} conditions; at most ${MAX_CONDITIONS}`);
  return parts.map((part) => {
    const m = CONDITION.exec(part);
    if (!m)
      throw usageError(
        `--guard condition "${printable(part.trim())}" is malformed: ${shape} (metric, one of >= <= > < =, a number)`,
      );
    const [, metric, op, raw] = m;
    if (!(GUARD_METRICS as readonly string[]).includes(metric)) {
      throw usageError(`--guard: unknown metric "${printable(metric)}" (known: ${GUARD_METRICS.join(', ')})`);
    }
    const value = Number(raw);
    if (RATES.includes(metric) && value > 1)
      throw usageError(`--guard: ${metric} is a fraction from 0 to 1, got ${raw}`);
    if (!RATES.includes(metric) && !Number.isInteger(value))
      throw usageError(`--guard: ${metric} is a count, got ${raw}`);
    if (metric === 'runs' && op !== '>=' && op !== '>')
      throw usageError(`--guard: runs sets a minimum of evidence, so use runs>=N or runs>N`);
    return { metric: metric as GuardMetric, op: op as GuardOp, value };
  });
}

export function formatGuard(conditions: GuardCondition[]): string {
  return conditions.map((c) => `${c.metric}${c.op}${c.value}`).join(',');
}

/** What canon.guard_verdict answers. */
export interface GuardVerdict {
  verdict: 'pass' | 'fail' | 'wait';
  failed: string[];
  waiting: string[];
  metrics: {
    runs: number;
    succeeded: number;
    failed: number;
    dead: number;
    success_rate: number | null;
    failure_rate: number | null;
  };
}
