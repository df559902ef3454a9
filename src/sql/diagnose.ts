// What `canon diagnose` needs besides the entity's chain (src/sql/trace.ts): the state of
// every job type (paused, breaker), live workers per lane, the core trigger, the flags as
// they apply to this entity, and the entity's events that the gap rule finds without their
// job (the rule of event_to_job_gap, from src/sql/health.ts, over all of the entity's events;
// diagnose applies the grace period). $1 entity id, $2 worker-alive seconds.
import { CORE_TRIGGER_ENABLED, decisionCovers } from './health.js';

export const DIAGNOSE_SQL = {
  context: `
select now() as now,
       (select coalesce(jsonb_object_agg(t.name, jsonb_build_object(
                 'lane', t.lane, 'paused', t.paused, 'pause_reason', t.pause_reason, 'timeout_seconds', t.timeout_seconds,
                 'breaker_open', coalesce(b.state = 'open' and b.next_attempt_at > now(), false),
                 'breaker_next_attempt_at', b.next_attempt_at)), '{}'::jsonb)
          from canon.job_types t left join canon.breakers b on b.job_type = t.name) as types,
       (select coalesce(jsonb_object_agg(lane, n), '{}'::jsonb)
          from (select unnest(lanes) as lane, count(*)::int as n from canon.workers
                 where stopped_at is null and heartbeat_at > now() - make_interval(secs => $2::float8) group by 1) w) as workers_by_lane,
       ${CORE_TRIGGER_ENABLED} as core_trigger_enabled,
       (select coalesce(jsonb_agg(jsonb_build_object('name', f.name, 'enabled', f.enabled, 'rollout_percent', f.rollout_percent,
                                                     'on_for_entity', canon.flag_is_on(f.name, $1)) order by f.name), '[]'::jsonb)
          from canon.flags f) as flags,
       (select coalesce(jsonb_agg(e.position order by e.position), '[]'::jsonb)
          from canon.events e
          ${decisionCovers('e.entity_id', 'e.position', 'e.seq', 'e.created_at')}
         where e.entity_id = $1
           and case when e.kind like 'job.%.required'
                    then not exists (select 1 from canon.jobs j where j.source_event_position = e.position)
                    else c.covered is null end) as gap_positions`,
} as const;
