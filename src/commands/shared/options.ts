// Command-line options that several commands declare the same way. They live here, below the
// command modules, so that no command imports another for them.
import { Option } from 'commander';
import { THRESHOLD_NAMES } from '../../observe/thresholds.js';

/** `--threshold name=value`: health, alerts, diagnose, serve and watch. */
export const thresholdOption = () =>
  new Option('--threshold <name=value...>', `override a threshold (${THRESHOLD_NAMES.join(', ')})`);

/** `--pipeline PATH`: every command that runs or reads what a pipeline module declares. */
export const pipelineOption = () =>
  new Option('--pipeline <path>', 'pipeline module (default: CANON_PIPELINE, else the example pipeline)');

/** The dead-job filters as commander parses them (`canon dead-jobs`, `canon jobs retry | cancel`). */
export interface DeadOpts {
  limit?: string;
  sinceHours?: string;
  type?: string;
  correlationId?: string;
  reason?: string;
}

/** The filters under the names parseDeadFilters reads. */
export const deadRaw = (o: DeadOpts) => ({
  limit: o.limit,
  since_hours: o.sinceHours,
  type: o.type,
  correlation_id: o.correlationId,
  reason: o.reason,
});
