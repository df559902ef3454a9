// Flag and rollout queries. Every change goes through a canon.* function (migrations/repeatable/steering.sql),
// which takes the flag's row lock and writes flag_changes through the history trigger.
const FLAG_COLUMNS = `f.name, f.description, f.enabled, f.rollout_percent, f.strategy, f.killed_at, f.killed_by,
       f.created_at, f.updated_at, f.updated_by,
       (select count(*)::int from canon.jobs j
         where j.hold_reason = canon.flag_hold_reason(f.name) and j.status = 'queued') as held_jobs,
       (select jsonb_build_object('id', r.id, 'current_percent', r.current_percent, 'step_percent', r.step_percent,
                                  'every_seconds', r.every_seconds, 'until_percent', r.until_percent, 'guard', r.guard,
                                  'next_step_at', r.next_step_at, 'step_started_at', r.step_started_at,
                                  'last_good_percent', r.last_good_percent, 'last_verdict', r.last_verdict,
                                  'started_by', r.started_by, 'started_at', r.started_at)
          from canon.flag_rollouts r where r.flag_name = f.name and r.status = 'running') as rollout`;

export const FLAGS_SQL = {
  list: `select ${FLAG_COLUMNS} from canon.flags f order by f.name`,
  get: `select ${FLAG_COLUMNS} from canon.flag_require($1) f`,
  create: `select canon.flag_create($1, $2, $3, $4) as change_id`,
  change: `select change_id, rollout_stopped, held_jobs from canon.flag_change($1, $2, $3, $4, $5)`,
  killPreview: `select canon.flag_kill_preview(f.name) as jobs from canon.flag_require($1) f`,
  rollback: `select change_id, undid, restored, rollout_stopped from canon.flag_rollback($1, $2, $3)`,
  release: `select canon.flag_release($1, $2, $3) as released`,
  history: `select c.id, c.at, c.actor, c.source, c.reason, c.before, c.after, c.undoes
              from canon.flag_require($1) f
              join canon.flag_changes c on c.flag_name = f.name
             order by c.id desc limit $2`,
  /** What a decider needs to evaluate every flag for many entities without a query each. */
  heldByFlag: `select substr(hold_reason, length('flag_killed:') + 1) as flag, count(*)::int as jobs
                 from canon.jobs where hold_reason like 'flag_killed:%' and status = 'queued'
                group by 1 order by 1`,
} as const;

export const ROLLOUT_SQL = {
  start: `select rollout_id, change_id, from_percent, to_percent
            from canon.rollout_start($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)`,
  stop: `select canon.rollout_stop($1, $2, $3) as percent`,
  advance: `select flag, rollout_id, action, from_percent, to_percent, reason, verdict from canon.advance_rollouts()`,
  running: `select flag_name as flag, id, current_percent, until_percent, step_percent, every_seconds, guard,
                   next_step_at, last_verdict, started_by, started_at
              from canon.flag_rollouts where status = 'running' order by flag_name`,
  autoRollbacks: `select id, flag_name as flag, at, actor, reason, before, after
                    from canon.flag_changes
                   where source = 'auto-rollback' and at > now() - interval '24 hours'
                   order by at desc`,
} as const;
