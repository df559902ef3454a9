// The MVCC horizon as health shows it: who holds it back (from the rows HORIZON_SQL embeds in
// the health snapshot) and the dead tuples of the hot tables. A snapshot held for minutes
// keeps every dead version of jobs and runs that was made since it began, and the claim
// walks over them; runbooks/horizon-pinned.md says how to find and end the holder.
import type { Horizon, HorizonHolder, HotTable } from './types.js';

/** The embedded rows as the snapshot returns them (jsonb: bigints may arrive as numbers or strings). */
export interface HorizonReads {
  horizon: HorizonHolder[];
  hot_tables: HotTable[];
}

const num = (v: unknown) => Number(v ?? 0);

export function horizonOf(reads: HorizonReads): Horizon {
  const holders = reads.horizon.map((h) => ({
    ...h,
    pid: h.pid === null ? null : num(h.pid),
    xmin_age: num(h.xmin_age),
    seconds: h.seconds === null ? null : num(h.seconds),
  }));
  const timed = holders.filter((h) => h.seconds !== null).map((h) => h.seconds as number);
  return {
    pinned_seconds: timed.length ? Math.max(...timed) : 0,
    xmin_age: holders.length ? Math.max(...holders.map((h) => h.xmin_age)) : 0,
    holders,
    hot_tables: reads.hot_tables.map((t) => ({
      ...t,
      live_tuples: num(t.live_tuples),
      dead_tuples: num(t.dead_tuples),
      dead_ratio: num(t.dead_ratio),
      updates: num(t.updates),
      hot_updates: num(t.hot_updates),
      last_vacuum_at: t.last_vacuum_at ? new Date(t.last_vacuum_at).toISOString() : null,
    })),
  };
}

/** The holder that pins the horizon longest: the one to end first. */
export function oldestHolder(h: Horizon): HorizonHolder | undefined {
  return [...h.holders].sort((a, b) => (b.seconds ?? -1) - (a.seconds ?? -1) || b.xmin_age - a.xmin_age)[0];
}

/** "session pid 4242 (psql, idle in transaction) 12m 5s" */
export function describeHolder(x: HorizonHolder): string {
  const who =
    x.kind === 'session'
      ? `session pid ${x.pid}`
      : x.kind === 'replication_slot'
        ? `replication slot ${x.application}`
        : `prepared transaction ${x.application}`;
  const detail = [x.kind === 'session' ? x.application || null : null, x.state].filter(Boolean).join(', ');
  return `${who}${detail ? ` (${detail})` : ''}`;
}
