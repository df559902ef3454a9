// The provenance file (docs/PROVENANCE.md): what canon attested about some entities at one
// snapshot, in the seed's names (`verification_snapshot_ts`, `claims_validated`). Validated
// with zod on read; the first problem is reported as one line naming the field.
import { z } from 'zod';

export const PROVENANCE_FORMAT = 'canon.provenance/1';

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters (a SHA-256)');
const isoTime = z
  .string()
  .refine(
    (s) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s) && !Number.isNaN(Date.parse(s)),
    'must be an ISO 8601 timestamp',
  );

export const runClaimSchema = z.object({
  run_id: z.number().int().positive(),
  trace_id: z.string().min(1).max(300),
  job_id: z.number().int().positive(),
  type: z.string().min(1),
  attempt: z.number().int().positive(),
  status: z.enum(['running', 'succeeded', 'failed', 'cancelled']),
});

export const timestampClaimSchema = z.object({
  hash: hex64,
  signature: z.string().min(1),
  key_id: z.string().min(1),
  algorithm: z.string().min(1),
  timestamp: isoTime,
  entity_id: z.string().min(1),
  public_key: z.string().min(1),
});

export const anchorClaimSchema = z.object({
  root: hex64,
  leaf_hash: hex64,
  leaf_index: z.number().int().nonnegative(),
  tree_size: z.number().int().positive(),
  proof: z.array(hex64),
});

export const entityClaimSchema = z.object({
  entity_id: z.string().min(1).max(200),
  status: z.enum(['pending', 'in_progress', 'completed', 'failed', 'blocked']),
  ledger_head: z.object({ seq: z.number().int().nonnegative(), hash: hex64.nullable() }),
  runs: z.array(runClaimSchema),
  artifact_hash: z
    .string()
    .regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:" and 64 lowercase hex characters')
    .nullable(),
  timestamp_signature: timestampClaimSchema.nullable(),
  anchor: anchorClaimSchema.nullable(),
});

export const provenanceSchema = z.object({
  format: z.literal(PROVENANCE_FORMAT),
  verification_snapshot_ts: isoTime,
  generated_by: z.string().optional(),
  claims_validated: z.array(entityClaimSchema).min(1).max(100_000),
});

export type Provenance = z.infer<typeof provenanceSchema>;
export type EntityClaim = z.infer<typeof entityClaimSchema>;
export type RunClaim = z.infer<typeof runClaimSchema>;
export type TimestampClaim = z.infer<typeof timestampClaimSchema>;
export type AnchorClaim = z.infer<typeof anchorClaimSchema>;
