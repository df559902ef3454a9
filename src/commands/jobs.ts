// `canon jobs …`: acting on jobs. The subcommands live in their own modules (retry/cancel
// in jobs-retry.ts, redrive in jobs-redrive.ts, pause/resume in jobs-pause.ts) and hang off
// this one parent so `canon jobs --help` lists them together.

import { register as pauseResume } from './jobs-pause.js';
import { register as redrive } from './jobs-redrive.js';
import { register as retryCancel } from './jobs-retry.js';
import { examples, type Register } from './types.js';

const subcommands: Register[] = [retryCancel, redrive, pauseResume];

export const register: Register = (program, run) => {
  const jobs = program
    .command('jobs')
    .description('retry, cancel, re-drive, pause and resume jobs')
    .addHelpText(
      'after',
      examples('canon jobs retry 42', 'canon jobs redrive doc-42', 'canon jobs pause anchor --reason "TSA outage"'),
    );
  for (const sub of subcommands) sub(jobs, run);
};
