-- canon definitions | class: core | requires: runs
-- Steering: flags with exact rollback and a kill switch, guarded auto-rollout advanced by
-- `canon tick`, circuit breakers per job type with a half-open probe, and pausing a type.

-- The state that history records and rollback restores. A rollout's plan and progress live in
-- canon.flag_rollouts, not here: progress bookkeeping is not a flag change.
create or replace function canon.flag_state(f canon.flags) returns jsonb
language sql immutable as $$
  select jsonb_build_object('enabled', f.enabled, 'rollout_percent', f.rollout_percent,
                            'strategy', f.strategy, 'killed', f.killed_at is not null)
$$;

-- Every change to a flag, whatever wrote it (canon's CLI, the auto-rollout, or a hand-written
-- UPDATE from the seed guides), becomes a flag_changes row. canon's own writers say who and
-- why through the transaction-local settings canon.actor / canon.reason / canon.source;
-- plain SQL is recorded with the database user as actor.
create or replace function canon.flags_record_change() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
declare
  v_before jsonb := case when tg_op = 'UPDATE' then canon.flag_state(old) end;
  v_after jsonb := canon.flag_state(new);
begin
  if v_before is not distinct from v_after then
    return null;
  end if;
  insert into canon.flag_changes (flag_name, actor, reason, source, before, after, undoes)
  values (new.name,
          coalesce(nullif(current_setting('canon.actor', true), ''), session_user),
          nullif(current_setting('canon.reason', true), ''),
          coalesce(nullif(current_setting('canon.source', true), ''), 'sql'),
          v_before, v_after,
          nullif(current_setting('canon.undoes', true), '')::bigint);
  return null;
end $$;
revoke all on function canon.flags_record_change() from public;
drop trigger if exists canon_flags_history on canon.flags;
create trigger canon_flags_history after insert or update on canon.flags
  for each row execute function canon.flags_record_change();

-- A stable bucket 0..99 per (flag, entity): raising a percentage only ever adds entities.
create or replace function canon.flag_bucket(p_flag text, p_entity_id text) returns integer
language sql immutable parallel safe as $$
  select (('x' || substr(md5(p_flag || ':' || p_entity_id), 1, 8))::bit(32)::bigint % 100)::integer
$$;

create or replace function canon.flag_is_on(p_flag text, p_entity_id text) returns boolean
language sql stable as $$
  select coalesce((select f.enabled and (f.rollout_percent >= 100 or canon.flag_bucket(f.name, p_entity_id) < f.rollout_percent)
                     from canon.flags f where f.name = p_flag), false)
$$;

create or replace function canon.steering_note(p_kind text, p_target text, p_action text, p_actor text, p_reason text,
                                    p_detail jsonb default '{}'::jsonb)
returns void language sql as $$
  insert into canon.steering_log (target_kind, target, action, actor, reason, detail)
  values (p_kind, p_target, p_action, coalesce(nullif(p_actor, ''), session_user), nullif(p_reason, ''),
          coalesce(p_detail, '{}'::jsonb))
$$;

-- Keeps updated_at/updated_by honest for every writer (a hand-written UPDATE included) and
-- ends a kill when the flag is turned back on.
create or replace function canon.flags_before_update() returns trigger
language plpgsql as $$
begin
  if new.enabled and not old.enabled then
    new.killed_at := null;
    new.killed_by := null;
  end if;
  if canon.flag_state(new) is distinct from canon.flag_state(old) then
    new.updated_at := now();
    new.updated_by := coalesce(nullif(current_setting('canon.actor', true), ''), session_user);
  end if;
  return new;
end $$;
drop trigger if exists canon_flags_before_update on canon.flags;
create trigger canon_flags_before_update before update on canon.flags
  for each row execute function canon.flags_before_update();

create or replace function canon.flag_hold_reason(p_flag text) returns text
language sql immutable as $$ select 'flag_killed:' || p_flag $$;

create or replace function canon.flag_release_jobs(p_flag text) returns integer
language plpgsql as $$
declare
  v_n integer;
begin
  update canon.jobs set hold_reason = null, updated_at = now()
   where hold_reason = canon.flag_hold_reason(p_flag) and status = 'queued';
  get diagnostics v_n = row_count;
  if v_n > 0 then
    perform pg_notify('canon_jobs', 'execution');
  end if;
  return v_n;
end $$;

create or replace function canon.flags_release_on_unkill() returns trigger
language plpgsql as $$
begin
  perform canon.flag_release_jobs(new.name);
  return null;
end $$;
drop trigger if exists canon_flags_release on canon.flags;
create trigger canon_flags_release after update on canon.flags
  for each row when (old.killed_at is not null and new.killed_at is null)
  execute function canon.flags_release_on_unkill();

-- A decider that read its flags before a kill committed may still enqueue a job the flag
-- allowed; the job is held on arrival, so a kill holds everything decided under the flag.
create or replace function canon.jobs_hold_killed() returns trigger
language plpgsql as $$
declare
  v_flag text;
begin
  select f.name into v_flag
    from jsonb_each(new.payload -> 'flags') e
    join canon.flags f on f.name = e.key
   where e.value = 'true'::jsonb and f.killed_at is not null
   order by f.name
   limit 1;
  if v_flag is not null and new.hold_reason is null then
    new.hold_reason := canon.flag_hold_reason(v_flag);
  end if;
  return new;
end $$;
drop trigger if exists canon_jobs_kill_hold on canon.jobs;
create trigger canon_jobs_kill_hold before insert on canon.jobs
  for each row when (jsonb_typeof(new.payload -> 'flags') = 'object')
  execute function canon.jobs_hold_killed();

-- Reads a flag or refuses with one line naming the known ones. With p_lock it takes the
-- flag's row lock: every steering writer goes through here, so writers of one flag (CLI,
-- tick, rollback) serialise, and always lock the flag first, its rollout row second.
create or replace function canon.flag_require(p_flag text, p_lock boolean default false) returns canon.flags
language plpgsql as $$
declare
  f canon.flags;
  v_known text;
begin
  if p_lock then
    select * into f from canon.flags where name = p_flag for update;
  else
    select * into f from canon.flags where name = p_flag;
  end if;
  if not found then
    select string_agg(name, ', ' order by name) into v_known from (select name from canon.flags order by name limit 20) s;
    raise exception using errcode = 'CN006',
      message = format('unknown flag "%s" (%s)', p_flag,
                       coalesce('known flags: ' || v_known, 'no flags are declared yet')),
      hint = 'flags are declared by the pipeline, or with `canon flags create`';
  end if;
  return f;
end $$;

-- Writes a state to a locked flag and says who, why and through what; the history trigger
-- reads the transaction-local settings, which are cleared again so that later plain SQL in
-- the same transaction is not attributed to this writer.
create or replace function canon.flag_write(p_flag text, p_state jsonb, p_actor text, p_reason text, p_source text,
                                 p_undoes bigint default null)
returns bigint language plpgsql as $$
declare
  v_last bigint;
  v_new bigint;
begin
  select max(id) into v_last from canon.flag_changes where flag_name = p_flag;
  perform set_config('canon.actor', coalesce(p_actor, ''), true),
          set_config('canon.reason', coalesce(p_reason, ''), true),
          set_config('canon.source', p_source, true),
          set_config('canon.undoes', coalesce(p_undoes::text, ''), true);
  update canon.flags
     set enabled = (p_state ->> 'enabled')::boolean,
         rollout_percent = (p_state ->> 'rollout_percent')::integer,
         strategy = p_state ->> 'strategy',
         killed_at = case when coalesce((p_state ->> 'killed')::boolean, false) then coalesce(killed_at, now()) end,
         killed_by = case when coalesce((p_state ->> 'killed')::boolean, false) then coalesce(killed_by, p_actor) end
   where name = p_flag;
  perform set_config('canon.actor', '', true), set_config('canon.reason', '', true),
          set_config('canon.source', '', true), set_config('canon.undoes', '', true);
  select max(id) into v_new from canon.flag_changes where flag_name = p_flag;
  -- null when the state did not change (the trigger records nothing then)
  return nullif(v_new, v_last);
end $$;

-- Ends the flag's running rollout, if any (caller holds the flag's lock). True when one ended.
create or replace function canon.rollout_end(p_flag text, p_status text, p_actor text, p_reason text)
returns boolean language plpgsql as $$
begin
  update canon.flag_rollouts
     set status = p_status, ended_at = now(), ended_by = coalesce(nullif(p_actor, ''), session_user),
         end_reason = p_reason
   where flag_name = p_flag and status = 'running';
  return found;
end $$;

-- What the guard looks at: the finished execution runs, and the jobs that died, since the
-- step began, of the jobs decided with this flag on (the decider records the flags it used
-- in the job payload). Rates are null without runs: no evidence either way.
create or replace function canon.rollout_metrics(p_flag text, p_since timestamptz) returns jsonb
language sql stable as $$
  with runs as (
    select r.status
      from canon.job_runs r
      join canon.jobs j on j.id = r.job_id
     where r.finished_at >= p_since and r.lane = 'execution' and r.status in ('succeeded', 'failed')
       and j.payload -> 'flags' -> p_flag = 'true'::jsonb
  ), totals as (
    select count(*) as runs, count(*) filter (where status = 'succeeded') as ok,
           count(*) filter (where status = 'failed') as failed
      from runs
  )
  select jsonb_build_object(
           'runs', t.runs, 'succeeded', t.ok, 'failed', t.failed,
           'success_rate', case when t.runs > 0 then round(t.ok::numeric / t.runs, 4) end,
           'failure_rate', case when t.runs > 0 then round(t.failed::numeric / t.runs, 4) end,
           'dead', (select count(*) from canon.jobs j
                     where j.status = 'failed' and j.finished_at >= p_since and j.lane = 'execution'
                       and j.payload -> 'flags' -> p_flag = 'true'::jsonb))
    from totals t
$$;

-- pass, fail or wait. A condition on a rate without runs, or `runs>=N` not yet met, waits:
-- too little traffic is not evidence of harm, so it never causes a rollback.
create or replace function canon.guard_verdict(p_conditions jsonb, p_metrics jsonb) returns jsonb
language plpgsql immutable as $$
declare
  c jsonb;
  v numeric;
  want numeric;
  ok boolean;
  v_fail text[] := '{}';
  v_wait text[] := '{}';
begin
  for c in select * from jsonb_array_elements(coalesce(p_conditions, '[]'::jsonb)) loop
    v := (p_metrics ->> (c ->> 'metric'))::numeric;
    want := (c ->> 'value')::numeric;
    if v is null then
      v_wait := v_wait || format('%s: no finished runs yet', c ->> 'metric');
      continue;
    end if;
    ok := case c ->> 'op'
            when '>=' then v >= want when '<=' then v <= want when '>' then v > want
            when '<' then v < want when '=' then v = want end;
    if ok then
      continue;
    elsif c ->> 'metric' = 'runs' then
      v_wait := v_wait || format('runs=%s, waiting for %s%s', v, c ->> 'op', want);
    else
      v_fail := v_fail || format('%s=%s, needs %s%s', c ->> 'metric', v, c ->> 'op', want);
    end if;
  end loop;
  return jsonb_build_object(
    'verdict', case when cardinality(v_fail) > 0 then 'fail' when cardinality(v_wait) > 0 then 'wait' else 'pass' end,
    'failed', to_jsonb(v_fail), 'waiting', to_jsonb(v_wait), 'metrics', p_metrics);
end $$;

create or replace function canon.flag_create(p_name text, p_description text, p_actor text, p_reason text)
returns bigint language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
declare
  v_id bigint;
begin
  perform set_config('canon.actor', coalesce(p_actor, ''), true),
          set_config('canon.reason', coalesce(p_reason, ''), true),
          set_config('canon.source', 'create', true);
  begin
    insert into canon.flags (name, description, updated_by)
    values (p_name, coalesce(p_description, ''), coalesce(nullif(p_actor, ''), session_user));
  exception when unique_violation then
    raise exception using errcode = 'CN005', message = format('flag "%s" already exists', p_name);
  end;
  perform set_config('canon.actor', '', true), set_config('canon.reason', '', true), set_config('canon.source', '', true);
  select max(id) into v_id from canon.flag_changes where flag_name = p_name;
  return v_id;
end $$;
revoke all on function canon.flag_create(text, text, text, text) from public;
grant execute on function canon.flag_create(text, text, text, text) to canon_operator;

-- enable (on for every entity), disable (off; percent and strategy kept for a later
-- rollback), rollout (on for a stable p_percent % of entities), kill (off at once, rollout
-- stopped, queued jobs the flag allowed held). A manual change stops a running
-- auto-rollout: otherwise the next tick would overwrite what the operator just did.
create or replace function canon.flag_change(p_flag text, p_action text, p_percent integer, p_actor text, p_reason text)
returns table (change_id bigint, rollout_stopped boolean, held_jobs integer)
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
declare
  f canon.flags := canon.flag_require(p_flag, true);
  v_state jsonb;
begin
  if p_action = 'rollout' and (p_percent is null or p_percent not between 0 and 100) then
    raise exception using errcode = 'CN005', message = format('rollout percent must be between 0 and 100, got %s', coalesce(p_percent::text, 'none'));
  end if;
  v_state := case p_action
    when 'enable' then jsonb_build_object('enabled', true, 'rollout_percent', 100, 'strategy', 'all', 'killed', false)
    when 'disable' then canon.flag_state(f) || jsonb_build_object('enabled', false)
    when 'rollout' then jsonb_build_object('enabled', true, 'rollout_percent', p_percent, 'strategy', 'gradual', 'killed', false)
    when 'kill' then canon.flag_state(f) || jsonb_build_object('enabled', false, 'killed', true)
  end;
  if v_state is null then
    raise exception using errcode = 'CN005', message = format('unknown flag action "%s"', p_action);
  end if;
  rollout_stopped := canon.rollout_end(p_flag, case when p_action = 'kill' then 'killed' else 'stopped' end, p_actor,
                                       format('%s by %s%s', p_action, coalesce(nullif(p_actor, ''), session_user),
                                              coalesce(': ' || nullif(p_reason, ''), '')));
  change_id := canon.flag_write(p_flag, v_state, p_actor, p_reason, p_action);
  held_jobs := 0;
  if p_action = 'kill' then
    -- jobs already running finish; queued ones (retries included) wait for the kill to end
    update canon.jobs set hold_reason = canon.flag_hold_reason(p_flag), updated_at = now()
     where status = 'queued' and hold_reason is null and payload -> 'flags' -> p_flag = 'true'::jsonb;
    get diagnostics held_jobs = row_count;
  end if;
  return next;
end $$;
revoke all on function canon.flag_change(text, text, integer, text, text) from public;
grant execute on function canon.flag_change(text, text, integer, text, text) to canon_operator;

-- How many queued jobs a kill would hold now (`flags kill --dry-run`).
create or replace function canon.flag_kill_preview(p_flag text) returns integer
language sql stable as $$
  select count(*)::integer from canon.jobs
   where status = 'queued' and hold_reason is null and payload -> 'flags' -> p_flag = 'true'::jsonb
$$;

-- Undoes the newest change not undone yet (rollback rows themselves are never targets), so
-- repeated rollbacks walk the history back like a stack: A, B, rollback (undoes B), C,
-- rollback (undoes C), rollback (undoes A). The restored state is the target's `before`,
-- exactly; a flag's first row (its creation) cannot be undone.
create or replace function canon.flag_rollback(p_flag text, p_actor text, p_reason text)
returns table (change_id bigint, undid bigint, restored jsonb, rollout_stopped boolean)
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
declare
  f canon.flags := canon.flag_require(p_flag, true);
  t canon.flag_changes;
begin
  select c.* into t from canon.flag_changes c
   where c.flag_name = p_flag and c.source <> 'rollback'
     and not exists (select 1 from canon.flag_changes u where u.undoes = c.id)
   order by c.id desc limit 1;
  if not found or t.before is null then
    raise exception using errcode = 'CN005',
      message = format('flag "%s" has no earlier state to roll back to (see `canon flags history %s`)', p_flag, p_flag);
  end if;
  rollout_stopped := canon.rollout_end(p_flag, 'stopped', p_actor,
                                       format('rollback by %s', coalesce(nullif(p_actor, ''), session_user)));
  restored := jsonb_build_object('enabled', t.before -> 'enabled', 'rollout_percent', t.before -> 'rollout_percent',
                                 'strategy', t.before -> 'strategy', 'killed', coalesce(t.before -> 'killed', 'false'::jsonb));
  undid := t.id;
  change_id := canon.flag_write(p_flag, restored, p_actor,
                                coalesce(nullif(p_reason, ''), format('rollback of change %s', t.id)), 'rollback', t.id);
  if change_id is null then
    -- the state already equals the target's before (cannot happen while every change is
    -- recorded, but a no-op must still mark the target undone or the next rollback repeats it)
    insert into canon.flag_changes (flag_name, actor, reason, source, before, after, undoes)
    values (p_flag, coalesce(nullif(p_actor, ''), session_user), nullif(p_reason, ''), 'rollback',
            canon.flag_state(f), canon.flag_state(f), t.id)
    returning id into change_id;
  end if;
  return next;
end $$;
revoke all on function canon.flag_rollback(text, text, text) from public;
grant execute on function canon.flag_rollback(text, text, text) to canon_operator;

-- Lets the jobs a kill held run although the flag stays off (the operator judged them safe).
create or replace function canon.flag_release(p_flag text, p_actor text, p_reason text) returns integer
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
declare
  v_n integer;
begin
  perform canon.flag_require(p_flag, true);
  v_n := canon.flag_release_jobs(p_flag);
  perform canon.steering_note('flag', p_flag, 'release', p_actor, p_reason, jsonb_build_object('released_jobs', v_n));
  return v_n;
end $$;
revoke all on function canon.flag_release(text, text, text) from public;
grant execute on function canon.flag_release(text, text, text) to canon_operator;

-- Starts a guarded auto-rollout: the first step is applied now, later ones by `canon tick`.
create or replace function canon.rollout_start(p_flag text, p_first integer, p_step integer, p_every_seconds numeric,
                                    p_until integer, p_guard text, p_conditions jsonb, p_actor text, p_reason text)
returns table (rollout_id bigint, change_id bigint, from_percent integer, to_percent integer)
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
declare
  f canon.flags := canon.flag_require(p_flag, true);
  r canon.flag_rollouts;
begin
  select * into r from canon.flag_rollouts where flag_name = p_flag and status = 'running';
  if found then
    raise exception using errcode = 'CN005',
      message = format('flag "%s" already has an auto-rollout running (started by %s at %s, now at %s%%): stop it first with `canon flags stop %s`',
                       p_flag, r.started_by, to_char(r.started_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS"Z"'), r.current_percent, p_flag);
  end if;
  from_percent := case when f.enabled then f.rollout_percent else 0 end;
  to_percent := coalesce(p_first, least(p_until, from_percent + p_step));
  if p_first is null and from_percent >= p_until then
    raise exception using errcode = 'CN005',
      message = format('flag "%s" is already on for %s%% of entities, at or above --until %s', p_flag, from_percent, p_until);
  end if;
  if to_percent > p_until then
    raise exception using errcode = 'CN005', message = format('the first step (%s%%) is above --until %s', to_percent, p_until);
  end if;
  change_id := canon.flag_write(p_flag,
                 jsonb_build_object('enabled', true, 'rollout_percent', to_percent, 'strategy', 'gradual', 'killed', false),
                 p_actor,
                 format('auto-rollout started: %s%% now, +%s%% every %ss until %s%%%s%s', to_percent, p_step, p_every_seconds,
                        p_until, coalesce(', guard ' || p_guard, ''), coalesce(' — ' || nullif(p_reason, ''), '')),
                 'auto-rollout');
  insert into canon.flag_rollouts (flag_name, step_percent, every_seconds, until_percent, guard, conditions, start_state,
                                   current_percent, step_started_at, next_step_at, started_by, reason)
  values (p_flag, p_step, p_every_seconds, p_until, p_guard, coalesce(p_conditions, '[]'::jsonb), canon.flag_state(f),
          to_percent, now(), now() + make_interval(secs => p_every_seconds), coalesce(nullif(p_actor, ''), session_user),
          nullif(p_reason, ''))
  returning id into rollout_id;
  return next;
end $$;
revoke all on function canon.rollout_start(text, integer, integer, numeric, integer, text, jsonb, text, text) from public;
grant execute on function canon.rollout_start(text, integer, integer, numeric, integer, text, jsonb, text, text) to canon_operator;

-- `canon flags stop`: ends the auto-rollout and leaves the flag where it is.
create or replace function canon.rollout_stop(p_flag text, p_actor text, p_reason text) returns integer
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
declare
  v_pct integer;
begin
  perform canon.flag_require(p_flag, true);
  select current_percent into v_pct from canon.flag_rollouts where flag_name = p_flag and status = 'running';
  if not found then
    raise exception using errcode = 'CN005', message = format('flag "%s" has no auto-rollout running', p_flag);
  end if;
  perform canon.rollout_end(p_flag, 'stopped', p_actor, coalesce(nullif(p_reason, ''), 'stopped by ' || coalesce(nullif(p_actor, ''), session_user)));
  perform canon.steering_note('flag', p_flag, 'stop_rollout', p_actor, p_reason, jsonb_build_object('percent', v_pct));
  return v_pct;
end $$;
revoke all on function canon.rollout_stop(text, text, text) from public;
grant execute on function canon.rollout_stop(text, text, text) to canon_operator;

-- One pass of the tick over the due rollouts. Each flag is taken with SKIP LOCKED and its
-- rollout re-read after the lock (a fresh snapshot in READ COMMITTED), so overlapping ticks
-- cannot both take a step: the second either skips the locked flag or finds next_step_at
-- already moved past its now().
create or replace function canon.advance_rollouts()
returns table (flag text, rollout_id bigint, action text, from_percent integer, to_percent integer,
               reason text, verdict jsonb)
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
declare
  v_name text;
  f canon.flags;
  r canon.flag_rollouts;
  v_target jsonb;
  v_actor text := 'canon-tick';
begin
  for v_name in
    select ro.flag_name from canon.flag_rollouts ro
     where ro.status = 'running' and ro.next_step_at <= now()
     order by ro.next_step_at
  loop
    select * into f from canon.flags where name = v_name for update skip locked;
    continue when not found;
    select * into r from canon.flag_rollouts where flag_name = v_name and status = 'running';
    continue when not found or r.next_step_at > now();
    flag := v_name; rollout_id := r.id; from_percent := r.current_percent;

    -- changed behind the rollout's back (a hand-written UPDATE): the operator has taken over
    if not f.enabled or f.strategy <> 'gradual' or f.rollout_percent <> r.current_percent then
      action := 'stopped'; to_percent := case when f.enabled then f.rollout_percent else 0 end; verdict := null;
      reason := format('the flag was changed outside the rollout (now %s, %s%%): rollout stopped',
                       case when f.enabled then 'on' else 'off' end, f.rollout_percent);
      perform canon.rollout_end(v_name, 'stopped', v_actor, reason);
      return next;
      continue;
    end if;

    verdict := canon.guard_verdict(r.conditions, canon.rollout_metrics(v_name, r.step_started_at));
    update canon.flag_rollouts set last_verdict = verdict where id = r.id;

    if verdict ->> 'verdict' = 'fail' then
      v_target := case when r.last_good_percent is null then r.start_state || '{"killed": false}'::jsonb
                       else jsonb_build_object('enabled', true, 'rollout_percent', r.last_good_percent,
                                               'strategy', 'gradual', 'killed', false) end;
      action := 'rolled_back';
      to_percent := case when (v_target ->> 'enabled')::boolean then (v_target ->> 'rollout_percent')::integer else 0 end;
      reason := format('guard "%s" failed at %s%% (step since %s): %s; rolled back to %s%%', r.guard, r.current_percent,
                       to_char(r.step_started_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS"Z"'),
                       array_to_string(array(select jsonb_array_elements_text(verdict -> 'failed')), '; '), to_percent);
      perform canon.rollout_end(v_name, 'rolled_back', v_actor, reason);
      perform canon.flag_write(v_name, v_target, v_actor, reason, 'auto-rollback');
    elsif verdict ->> 'verdict' = 'wait' then
      action := 'waiting'; to_percent := r.current_percent;
      reason := array_to_string(array(select jsonb_array_elements_text(verdict -> 'waiting')), '; ');
    elsif r.current_percent >= r.until_percent then
      action := 'completed'; to_percent := r.current_percent;
      reason := format('auto-rollout reached %s%% and its last step passed the guard', r.current_percent);
      update canon.flag_rollouts set steps_passed = steps_passed + 1 where id = r.id;
      perform canon.rollout_end(v_name, 'completed', v_actor, reason);
    else
      action := 'advanced';
      to_percent := least(r.until_percent, r.current_percent + r.step_percent);
      reason := format('auto-rollout step %s%% → %s%% (rollout %s started by %s%s)', r.current_percent, to_percent, r.id,
                       r.started_by, case when r.guard is null then '' else ', guard ' || r.guard || ' passed' end);
      perform canon.flag_write(v_name,
                 jsonb_build_object('enabled', true, 'rollout_percent', to_percent, 'strategy', 'gradual', 'killed', false),
                 v_actor, reason, 'auto-rollout');
      update canon.flag_rollouts
         set last_good_percent = r.current_percent, current_percent = to_percent, steps_passed = steps_passed + 1,
             step_started_at = now(), next_step_at = now() + make_interval(secs => r.every_seconds)
       where id = r.id;
    end if;
    return next;
  end loop;
end $$;
revoke all on function canon.advance_rollouts() from public;
grant execute on function canon.advance_rollouts() to canon_worker;

-- Moves a (locked) breaker to a state and logs the transition.
create or replace function canon.breaker_move(p_type text, p_state text, p_next timestamptz, p_probe bigint,
                                   p_actor text, p_reason text)
returns void language plpgsql as $$
declare
  v_from text;
begin
  select state into v_from from canon.breakers where job_type = p_type;
  update canon.breakers
     set state = p_state,
         failure_count = case when p_state = 'closed' then 0 else failure_count end,
         opened_at = case when p_state = 'closed' then null
                          when state = 'closed' or opened_at is null then now() else opened_at end,
         next_attempt_at = case when p_state = 'closed' then null else p_next end,
         probe_job_id = p_probe, reason = p_reason, updated_at = now(), updated_by = p_actor
   where job_type = p_type;
  perform canon.steering_note('breaker', p_type, p_state, p_actor, p_reason,
                              jsonb_build_object('from', v_from, 'next_attempt_at', p_next, 'probe_job_id', p_probe));
end $$;

-- The accounting, in the database so every worker shares it without calling anything: an
-- execution run that fails with handler_error or timeout counts; threshold consecutive ones
-- open the breaker; the half-open probe's outcome closes or reopens it. A success on a clean
-- breaker costs one primary-key read and no write or lock.
create or replace function canon.breaker_on_run_end() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
set plan_cache_mode = auto
as $$
declare
  b canon.breakers;
  t canon.job_types;
  v_counts boolean := new.status = 'failed' and new.reason in ('handler_error', 'timeout');
  v_err text := left(coalesce(new.error, new.reason, ''), 200);
begin
  select * into b from canon.breakers where job_type = new.type;
  if not v_counts and (not found or (b.state = 'closed' and b.failure_count = 0)) then
    return null;
  end if;
  if not found then
    insert into canon.breakers (job_type) values (new.type) on conflict do nothing;
  end if;
  select * into b from canon.breakers where job_type = new.type for update;
  select * into t from canon.job_types where name = new.type;
  if b.state = 'half_open' and b.probe_job_id = new.job_id then
    if new.status = 'succeeded' then
      perform canon.breaker_move(new.type, 'closed', null, null, 'canon-breaker',
                                 format('probe job %s succeeded', new.job_id));
    elsif v_counts then
      update canon.breakers set failure_count = failure_count + 1 where job_type = new.type;
      perform canon.breaker_move(new.type, 'open', now() + make_interval(secs => t.breaker_cooldown_seconds), null,
                                 'canon-breaker', format('probe job %s failed (%s): %s', new.job_id, new.reason, v_err));
    else
      -- the probe ended without a verdict (released, rescued, precondition): probe again
      perform canon.breaker_move(new.type, 'open', now(), null, 'canon-breaker',
                                 format('probe job %s ended without a verdict (%s); next claim probes again',
                                        new.job_id, coalesce(new.reason, new.status)));
    end if;
  elsif b.state = 'closed' then
    if new.status = 'succeeded' then
      update canon.breakers set failure_count = 0, updated_at = now() where job_type = new.type;
    elsif v_counts then
      update canon.breakers set failure_count = failure_count + 1, updated_at = now()
       where job_type = new.type returning * into b;
      if b.failure_count >= t.breaker_threshold then
        perform canon.breaker_move(new.type, 'open', now() + make_interval(secs => t.breaker_cooldown_seconds), null,
                                   'canon-breaker', format('%s consecutive failures (last: job %s, %s: %s)',
                                                           b.failure_count, new.job_id, new.reason, v_err));
      end if;
    end if;
  elsif v_counts then
    -- open, or a straggler while half-open: counted, but only the probe decides
    update canon.breakers set failure_count = failure_count + 1, updated_at = now() where job_type = new.type;
  end if;
  return null;
end $$;
revoke all on function canon.breaker_on_run_end() from public;
drop trigger if exists canon_runs_breaker on canon.job_runs;
create trigger canon_runs_breaker after update of status on canon.job_runs
  for each row when (old.status = 'running' and new.status <> 'running' and new.lane = 'execution')
  execute function canon.breaker_on_run_end();

-- `canon breakers open|close`: an operator's verdict. Open lasts p_seconds (default: the
-- type's cooldown), then the usual half-open probe decides.
create or replace function canon.breaker_force(p_type text, p_state text, p_seconds numeric, p_actor text, p_reason text)
returns canon.breakers language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
declare
  t canon.job_types;
  b canon.breakers;
begin
  select * into t from canon.job_types where name = p_type;
  if not found then
    raise exception using errcode = 'CN006', message = format('unknown job type "%s"', p_type),
      hint = 'see `canon breakers list`';
  end if;
  if t.lane <> 'execution' then
    raise exception using errcode = 'CN005',
      message = format('"%s" is a %s-lane type; breakers guard execution types (use `canon jobs pause %s`)', p_type, t.lane, p_type);
  end if;
  insert into canon.breakers (job_type) values (p_type) on conflict do nothing;
  perform 1 from canon.breakers where job_type = p_type for update;
  if p_state = 'open' then
    perform canon.breaker_move(p_type, 'open', now() + make_interval(secs => coalesce(p_seconds, t.breaker_cooldown_seconds)),
                               null, coalesce(nullif(p_actor, ''), session_user), coalesce(nullif(p_reason, ''), 'opened by hand'));
  elsif p_state = 'closed' then
    perform canon.breaker_move(p_type, 'closed', null, null, coalesce(nullif(p_actor, ''), session_user),
                               coalesce(nullif(p_reason, ''), 'closed by hand'));
    perform pg_notify('canon_jobs', 'execution');
  else
    raise exception using errcode = 'CN005', message = format('a breaker can be forced open or closed, not %s', p_state);
  end if;
  select * into b from canon.breakers where job_type = p_type;
  return b;
end $$;
revoke all on function canon.breaker_force(text, text, numeric, text, text) from public;
grant execute on function canon.breaker_force(text, text, numeric, text, text) to canon_operator;

create or replace function canon.job_type_pause(p_type text, p_pause boolean, p_actor text, p_reason text)
returns jsonb language plpgsql
security definer
set search_path = pg_catalog, canon, pg_temp
as $$
declare
  t canon.job_types;
  v_changed boolean;
begin
  select * into t from canon.job_types where name = p_type for update;
  if not found then
    raise exception using errcode = 'CN006', message = format('unknown job type "%s"', p_type),
      hint = 'see `canon breakers list` or the pipeline module for the declared types';
  end if;
  v_changed := t.paused is distinct from p_pause;
  if v_changed then
    update canon.job_types
       set paused = p_pause,
           paused_at = case when p_pause then now() end,
           paused_by = case when p_pause then coalesce(nullif(p_actor, ''), session_user) end,
           pause_reason = case when p_pause then nullif(p_reason, '') end,
           updated_at = now()
     where name = p_type returning * into t;
    perform canon.steering_note('job_type', p_type, case when p_pause then 'pause' else 'resume' end, p_actor, p_reason);
    if not p_pause then
      perform pg_notify('canon_jobs', t.lane);
    end if;
  end if;
  return jsonb_build_object('changed', v_changed, 'type', t.name, 'lane', t.lane, 'paused', t.paused,
                            'paused_at', t.paused_at, 'paused_by', t.paused_by, 'pause_reason', t.pause_reason,
                            'queued', (select count(*) from canon.jobs j where j.type = p_type and j.status = 'queued'));
end $$;
revoke all on function canon.job_type_pause(text, boolean, text, text) from public;
grant execute on function canon.job_type_pause(text, boolean, text, text) to canon_operator;
