// The backup file: gzip-compressed JSON lines. Line 1 is the header below; then, per table in
// load order, a line {"@table": name} followed by one line per row (the row as jsonb); the last
// line is {"@end": true, "rows": {table: count}}. A file without its end line is truncated.
import { z } from 'zod';

export const BACKUP_FORMAT = 'canon.backup/1';

export const backupHeaderSchema = z.object({
  format: z.literal(BACKUP_FORMAT),
  created_at: z.string(),
  canon_version: z.string(),
  server_version: z.string(),
  migrations: z.array(z.object({ id: z.number().int(), name: z.string(), checksum: z.string() })),
  ledger: z.object({
    digest: z.string().regex(/^[0-9a-f]{64}$/),
    events: z.number().int().nonnegative(),
    entities: z.number().int().nonnegative(),
  }),
  tables: z.array(
    z.object({ name: z.string(), columns: z.array(z.string()).min(1), rows: z.number().int().nonnegative() }),
  ),
  sequences: z.array(z.object({ name: z.string(), last_value: z.string().regex(/^-?\d+$/), is_called: z.boolean() })),
});
export type BackupHeader = z.infer<typeof backupHeaderSchema>;

export const TABLE_MARK = '{"@table":';
export const END_MARK = '{"@end":';
export const tableMarker = (name: string) => JSON.stringify({ '@table': name });
export const endMarker = (rows: Record<string, number>) => JSON.stringify({ '@end': true, rows });
export const tableMarkerSchema = z.object({ '@table': z.string() });
export const endMarkerSchema = z.object({
  '@end': z.literal(true),
  rows: z.record(z.string(), z.number().int().nonnegative()),
});

/** Parents before children, following foreign keys; ties by name so the order is stable. */
export function loadOrder(tables: string[], fks: { child: string; parent: string }[]): string[] {
  const remaining = new Set(tables);
  const out: string[] = [];
  while (remaining.size) {
    const ready = [...remaining]
      .filter((t) => !fks.some((f) => f.child === t && f.parent !== t && remaining.has(f.parent)))
      .sort();
    // a cycle of foreign keys: load the rest by name (the load runs with the constraints checked, so a bad order fails loudly)
    const next = ready.length ? ready : [...remaining].sort();
    for (const t of next) {
      remaining.delete(t);
      out.push(t);
    }
  }
  return out;
}
