// Row budgets. The frame must stay below the terminal's height (Ink clears the whole screen
// when the output reaches it: flicker), so every part of the dashboard is given a number of
// rows up front and shows at most that many. Sections first get their minimum in priority
// order, then whatever is left goes to them, again by priority, up to what they can use.

export interface SectionNeed {
  key: string;
  /** rows it must have to be shown at all (0 = can be dropped) */
  min: number;
  /** rows it could use */
  want: number;
}

/** Gives each section its rows; the sum never exceeds `budget`. Order = priority. */
export function allocate(budget: number, sections: SectionNeed[]): Record<string, number> {
  const out: Record<string, number> = {};
  let left = Math.max(0, budget);
  for (const s of sections) {
    const min = Math.min(s.min, s.want);
    out[s.key] = min <= left ? min : 0;
    left -= out[s.key];
  }
  for (const s of sections) {
    if (out[s.key] === 0 && s.min > 0) continue; // dropped: no room for its minimum
    const more = Math.min(left, s.want - out[s.key]);
    out[s.key] += more;
    left -= more;
  }
  return out;
}

/** A list section: a header row plus item rows (one "none" row when empty). */
export function listNeed(key: string, items: number, minItems: number): SectionNeed {
  const rows = Math.max(items, 1);
  return { key, min: 1 + Math.min(rows, minItems), want: 1 + rows };
}

/**
 * Which `shown` of `n` items to draw so the cursor (an index into them, or -1 when the cursor
 * is elsewhere) stays visible: the start of the window.
 */
export function windowStart(n: number, shown: number, cursor: number): number {
  if (shown >= n || cursor < 0) return 0;
  return Math.min(Math.max(0, cursor - shown + 1), n - shown);
}

/** Terminal sizes below these get a one-line "too small" notice instead of a clipped mess. */
export const MIN_COLS = 40;
export const MIN_ROWS = 8;
/** From this width the overview puts its panels in two columns. */
export const WIDE_COLS = 120;
