// The views of the dashboard and the rows a cursor can stand on in each. Pure: the App keeps
// a stack of views and a cursor per view; what a key does depends on the row under it.
import type { ChalkInstance } from 'chalk';
import { type JobNode, renderTrace, type TraceNode } from '../observe/trace.js';
import type { FailureRow, FlagRow, Focus, FocusJob, TypeRow, WatchSnapshot } from './snapshot.js';
import type { JobRef } from './source.js';

export type View =
  | { kind: 'overview'; cursor: number }
  | { kind: 'type'; type: string; cursor: number }
  | { kind: 'job'; jobId: number; entity: string; cursor: number }
  | { kind: 'entity'; entity: string; cursor: number };

export type Item =
  | { kind: 'type'; row: TypeRow }
  | { kind: 'failure'; row: FailureRow }
  | { kind: 'flag'; row: FlagRow }
  | { kind: 'job'; row: FocusJob; type: string }
  | { kind: 'trace'; line: string; job: JobRef | null };

export function focusOf(v: View): Focus {
  switch (v.kind) {
    case 'overview':
      return {};
    case 'type':
      return { type: v.type };
    case 'job':
    case 'entity':
      return { entity: v.entity };
  }
}

export const sameFocus = (a: Focus, b: Focus) =>
  (a.type ?? null) === (b.type ?? null) && (a.entity ?? null) === (b.entity ?? null);

/** True when the snapshot was read for this view (after a move it is the previous view's until the next refresh). */
export function snapshotFits(v: View, s: WatchSnapshot | null): s is WatchSnapshot {
  if (!s) return false;
  const f = focusOf(v);
  return (s.focus_type?.type ?? null) === (f.type ?? null) && (s.focus_entity?.entity ?? null) === (f.entity ?? null);
}

/** Paused types and open breakers are shown under the flags; only flags can be selected there. */
export function overviewItems(s: WatchSnapshot): Item[] {
  return [
    ...s.types.map((row): Item => ({ kind: 'type', row })),
    ...s.failures.map((row): Item => ({ kind: 'failure', row })),
    ...s.flags.map((row): Item => ({ kind: 'flag', row })),
  ];
}

export function typeItems(s: WatchSnapshot): Item[] {
  const ft = s.focus_type;
  return ft ? ft.jobs.map((row): Item => ({ kind: 'job', row, type: ft.type })) : [];
}

function jobNodes(nodes: TraceNode[], out = new Map<number, JobNode>()): Map<number, JobNode> {
  for (const n of nodes) {
    if (n.node === 'job') out.set(n.id, n);
    jobNodes(n.children, out);
  }
  return out;
}

/** The trace tree as `canon trace` prints it, one row per line; rows of jobs know their job. */
export function traceItems(s: WatchSnapshot, c: ChalkInstance): { summary: string; items: Item[] } {
  const t = s.focus_entity?.trace;
  if (!t) return { summary: '', items: [] };
  const jobs = jobNodes(t.tree);
  const [summary, ...lines] = renderTrace(t, c).split('\n');
  const items = lines.map((line): Item => {
    const m = /job #(\d+) /.exec(line.replace(/\x1b\[[0-9;]*m/g, ''));
    const n = m ? jobs.get(Number(m[1])) : undefined;
    return {
      kind: 'trace',
      line,
      job: n ? { id: n.id, type: n.type, entity_id: s.focus_entity!.entity, status: n.status, dead: n.dead } : null,
    };
  });
  return { summary, items };
}

export function itemsOf(v: View, s: WatchSnapshot | null, c: ChalkInstance): Item[] {
  if (!snapshotFits(v, s)) return [];
  if (v.kind === 'overview') return overviewItems(s);
  if (v.kind === 'type') return typeItems(s);
  return traceItems(s, c).items;
}

/** The job a retry or cancel acts on: the job of a job view, else the row under the cursor. */
export function jobOf(v: View, item: Item | undefined, s: WatchSnapshot | null): JobRef | null {
  if (v.kind === 'job') {
    const j = s?.focus_entity?.chain?.jobs.find((x) => x.id === v.jobId);
    if (!j || !s?.focus_entity?.trace) return null;
    const node = jobNodes(s.focus_entity.trace.tree).get(j.id);
    return { id: j.id, type: j.type, entity_id: j.entity_id, status: j.status, dead: node?.dead ?? false };
  }
  if (!item) return null;
  if (item.kind === 'failure')
    return {
      id: item.row.job_id,
      type: item.row.type,
      entity_id: item.row.entity_id,
      status: item.row.job_status,
      dead: item.row.dead,
    };
  if (item.kind === 'job')
    return {
      id: item.row.id,
      type: item.type,
      entity_id: item.row.entity_id,
      status: item.row.status,
      dead: item.row.state === 'dead',
    };
  if (item.kind === 'trace') return item.job;
  return null;
}

/** The job type that pause/resume and "retry all dead" act on. */
export function typeOf(v: View, item: Item | undefined, s: WatchSnapshot | null): TypeRow | null {
  const name =
    v.kind === 'type'
      ? v.type
      : item?.kind === 'type'
        ? item.row.name
        : v.kind === 'job'
          ? jobOf(v, item, s)?.type
          : undefined;
  return name ? (s?.types.find((t) => t.name === name) ?? null) : null;
}
