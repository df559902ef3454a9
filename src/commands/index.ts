// Every command module, in the order `canon --help` lists them.

import { register as alerts } from './alerts.js';
import { register as anchor } from './anchor.js';
import { register as archive } from './archive.js';
import { register as audit } from './audit.js';
import { register as backup } from './backup.js';
import { register as breakers } from './breakers.js';
import { register as contracts } from './contracts.js';
import { register as db } from './db.js';
import { register as deadJobs } from './dead-jobs.js';
import { register as demo } from './demo.js';
import { register as diagnose } from './diagnose.js';
import { register as events } from './events.js';
import { register as exportLedger } from './export.js';
import { register as flags } from './flags.js';
import { register as gateway } from './gateway.js';
import { register as health } from './health.js';
import { register as init } from './init.js';
import { register as jobs } from './jobs.js';
import { register as load } from './load.js';
import { register as migrate } from './migrate.js';
import { register as prune } from './prune.js';
import { register as reportDebugProvenance } from './report-debug-provenance.js';
import { register as reportProvenance } from './report-provenance.js';
import { register as restore } from './restore.js';
import { register as serve } from './serve.js';
import { register as status } from './status.js';
import { register as tick } from './tick.js';
import { register as trace } from './trace.js';
import type { Register } from './types.js';
import { register as watch } from './watch.js';
import { register as work } from './work.js';

export const commands: Register[] = [
  db,
  migrate,
  contracts,
  events,
  gateway,
  jobs,
  init,
  work,
  tick,
  demo,
  anchor,
  flags,
  breakers,
  status,
  audit,
  exportLedger,
  archive,
  backup,
  restore,
  prune,
  reportProvenance,
  reportDebugProvenance,
  health,
  deadJobs,
  trace,
  diagnose,
  alerts,
  serve,
  watch,
  load,
];
