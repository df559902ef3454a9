// One line naming the first problem zod found: the path of the bad field and what is wrong.
import type { z } from 'zod';

export function fieldPath(path: PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

export function zodProblem(err: z.ZodError): string {
  const issue = err.issues[0];
  return `${fieldPath(issue.path)}: ${issue.message}`;
}
