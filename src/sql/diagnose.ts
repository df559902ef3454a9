// What `canon diagnose` needs besides the entity's chain (src/sql/trace.ts): the state of
// every job type (paused, breaker), the workers per lane (live ones, and the last one seen),
// the core trigger, the flags as they apply to this entity, the entity's events that the gap
// rule finds without their job, and the entity's derived status. $1 entity id, $2 worker-alive
// seconds.
import { CORE_TRIGGER_ENABLED, decisionCovers, notPruned, requiredHasJob } from './health.js';

/**
 * One entity's events without their job, by the gap rule of event_to_job_gap (src/sql/health.ts:
 * `requiredHasJob` for a `job.<type>.required` event, `decisionCovers` for any other), over
 * all of its events and with no grace: the job is created in the event's own transaction, so
 * a missing one is missing at once. Health applies the same rule to a window of the ledger,
 * older than the grace. Events whose jobs `canon prune` removed were covered when they were
 * pruned and are not asked about again (nor re-driven). `canon diagnose` reads the positions,
 * `canon jobs redrive` the rows. $1 entity id.
 */
export const ENTITY_GAP = `
select e.position, e.seq, e.kind, e.payload, e.correlation_id
  from canon.events e
  ${decisionCovers('e.entity_id', 'e.position', 'e.seq', 'e.created_at')}
 where e.entity_id = $1
   and ${notPruned('e.entity_id', 'e.position')}
   and case when e.kind like 'job.%.required' then not ${requiredHasJob('e.position')}
            else c.covered is null end`;

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
       -- per lane, the worker heard from last, live or not: "none since …" is what an operator
       -- needs when nothing is alive (a crashed worker, or the end of the last canon tick). The
       -- newest not stopped (workers_heartbeat_idx) and the last stopped (workers_stopped_idx),
       -- whichever was heard from later.
       (select coalesce(jsonb_object_agg(l.lane, to_jsonb(w)), '{}'::jsonb)
          from unnest(array['decision', 'execution']) as l(lane)
          cross join lateral (
            select * from ((select id, role, heartbeat_at as seen_at, stopped_at from canon.workers
                             where stopped_at is null and lanes @> array[l.lane] order by heartbeat_at desc limit 1)
                           union all
                           (select id, role, heartbeat_at, stopped_at from canon.workers
                             where stopped_at is not null and lanes @> array[l.lane] order by stopped_at desc limit 1)) c
             order by coalesce(c.stopped_at, c.seen_at) desc limit 1) w) as last_worker_by_lane,
       ${CORE_TRIGGER_ENABLED} as core_trigger_enabled,
       (select coalesce(jsonb_agg(jsonb_build_object('name', f.name, 'enabled', f.enabled, 'rollout_percent', f.rollout_percent,
                                                     'on_for_entity', canon.flag_is_on(f.name, $1)) order by f.name), '[]'::jsonb)
          from canon.flags f) as flags,
       (select coalesce(jsonb_agg(g.position order by g.position), '[]'::jsonb) from (${ENTITY_GAP}) g) as gap_positions,
       (select s.status from canon.entity_status s where s.entity_id = $1) as status`,
} as const;
