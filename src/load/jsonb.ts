// jsonb's canonical text, produced in Node: what `payload::text` returns in Postgres, byte for
// byte, so that `canon load` can hash events exactly as canon.event_hash does without a round
// trip per event. jsonb keeps object keys ordered by byte length first, then bytewise (its
// lengthCompareJsonbString), prints ", " between items and ": " after keys, and escapes strings
// like JSON.stringify does for the characters canon's generator uses (quote, backslash and
// control characters as \n, \t or \u00xx). Numbers are restricted to safe integers: jsonb keeps
// a numeric's scale (1.0 stays "1.0") where JavaScript would not.
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json | undefined };

const ASCII = /^[\x00-\x7f]*$/;

function byJsonbKeyOrder(a: string, b: string): number {
  // ASCII keys (all of canon's): UTF-16 order and length are byte order and length
  if (ASCII.test(a) && ASCII.test(b)) return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
  const la = Buffer.byteLength(a);
  const lb = Buffer.byteLength(b);
  if (la !== lb) return la - lb;
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function jsonbText(v: Json): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Error(`jsonbText: only safe integers are canonical here, got ${v}`);
    return String(v);
  }
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(jsonbText).join(', ')}]`;
  const keys = Object.keys(v)
    .filter((k) => v[k] !== undefined)
    .sort(byJsonbKeyOrder);
  return `{${keys.map((k) => `${JSON.stringify(k)}: ${jsonbText(v[k] as Json)}`).join(', ')}}`;
}
