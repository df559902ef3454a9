import { CORE_TRIGGER_ENABLED } from './health.js';

export const GATEWAY_SQL = {
  mode: `select value as mode from canon.settings where key = 'gateway_mode'`,
  setMode: `update canon.settings set value = $1, updated_at = now(), updated_by = $2 where key = 'gateway_mode'`,
  bypassCount: `select count(*)::int as bypassed from canon.jobs where not via_gateway`,
  enqueue: `select job_id, created from canon.enqueue_job($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $9)`,
  coreTrigger: `select ${CORE_TRIGGER_ENABLED} as enabled`,
  // only the owner of canon.events may run it (Postgres: "must be owner of table events")
  enableCoreTrigger: 'alter table canon.events enable trigger canon_core_trigger',
} as const;
