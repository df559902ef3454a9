// canon as a library: the public surface of `import … from 'canon'` (and canon/testing, in
// src/testing/index.ts). Only what this file exports is public and follows semver; every
// other module under src/ is internal and may change in any release (README, "The library").

export type { RunningWorker, StartWorkerOptions } from './engine/app-worker.js';
// Workers in the application's process
export { startWorker } from './engine/app-worker.js';
export type { LogFormat, LogLevel } from './engine/log.js';
export { createLogger } from './engine/log.js';
export type { Lane } from './engine/types.js';
export type { WorkerStats } from './engine/worker.js';
// Errors
export { CanonError, EXIT } from './errors.js';
export type { AppendInput, LedgerEvent } from './ledger.js';
// The ledger: appending (alone, or in the caller's own transaction) and reading
export { appendEvent, history as readHistory, requiredKind, requiredType } from './ledger.js';
// Seeing
export { computeHealth as healthSnapshot } from './observe/health.js';
export type { Thresholds } from './observe/thresholds.js';
export type { Health } from './observe/types.js';
export type {
  Decision,
  Entity,
  EntityCheck,
  FlagReader,
  FlagSpec,
  Handler,
  HandlerContext,
  JobTypeSpec,
  Logger,
  Pipeline,
  PipelineProofs,
  ProofCheck,
  RequiredJob,
  SyntheticProofs,
} from './pipeline/define.js';
// Defining a pipeline
export {
  definePipeline,
  JOB_TYPE_DEFAULTS,
  PermanentError,
  PreconditionError,
  RetryableError,
} from './pipeline/define.js';
export type { AnchorClaim, TimestampClaim } from './proof/provenance-format.js';
