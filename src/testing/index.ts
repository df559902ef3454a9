// canon/testing: the public surface for testing a pipeline (README, "Testing your pipeline").
// Unit: makeEntity → decide (the authority) and runHandler (one handler), no database.
// Integration: runPipeline (entities through the real worker on a throw-away database).
export type {
  EntityInput,
  EntityRun,
  PipelineRun,
  RunPipelineOptions,
} from './integration.js';
export { runPipeline } from './integration.js';
export type {
  DecisionPlan,
  EventInput,
  HandlerOutcome,
  RunHandlerOptions,
} from './unit.js';
export { decide, makeEntity, runHandler } from './unit.js';
