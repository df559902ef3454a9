// Many command lines through the binary's main() in one Node process (cli-batch.mjs): the
// bad-input and secrets tests try hundreds of inputs without Node's start-up for each.
import path from 'node:path';
import { execa } from 'execa';
import { type RunResult, root } from '../helpers.js';

export interface BatchCase {
  args: string[];
  env?: Record<string, string>;
  timeoutMs?: number;
}

export type BatchResult = RunResult & { ms: number };

export async function runBatch(cases: BatchCase[]): Promise<BatchResult[]> {
  if (cases.length === 0) return [];
  const r = await execa('node', [path.join(root, 'test/support/cli-batch.mjs')], {
    input: JSON.stringify(cases.map((c) => ({ ...c, env: { NO_COLOR: '1', ...c.env } }))),
    cwd: root,
    reject: false,
    timeout: 600_000,
    maxBuffer: 512 * 1024 * 1024,
  });
  if (r.exitCode !== 0) throw new Error(`cli-batch failed (${r.exitCode}): ${String(r.stderr).slice(0, 2000)}`);
  return (JSON.parse(String(r.stdout)) as { code: number | string; stdout: string; stderr: string; ms: number }[]).map(
    (x) => ({
      exitCode: typeof x.code === 'number' ? x.code : -1,
      stdout: x.stdout,
      stderr: x.stderr,
      ms: x.ms,
    }),
  );
}
