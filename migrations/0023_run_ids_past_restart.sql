-- canon migration | class: core | breaking: no
-- A run id can never be handed out twice, so that claims may commit without waiting for their
-- WAL flush again (0017, taken back by 0022; the claim of 0024 turns it off for itself).
--
-- Why 0017 was unsafe: a server crash can lose a claim whose commit had not reached the disk,
-- together with the WAL record that advanced the run id sequence; after recovery the sequence
-- handed the same ids out again, and a worker still holding a run of the lost claim presented
-- an id that now named another claim — possibly its own new claim of a different job — which
-- every fence (run running, this worker's, the job's current run) accepted.
--
-- What makes it safe: crash recovery empties every unlogged table (a clean shutdown keeps
-- them, and loses nothing to begin with: it flushes the WAL). canon.run_id_guard is an
-- unlogged table holding one row; the first insert of runs in each session looks for it, and
-- when recovery has emptied it — after a crash of the server or of any backend, or on a
-- standby promoted or a base backup restored — moves the run id sequence 10,000,000 ids past
-- where recovery left it, puts the row back, and commits that transaction durably whatever
-- the caller asked for. Sessions do not outlive a crash, so no run can be inserted after one
-- before this check. Ids issued before the crash and possibly lost lie within a few WAL-writer
-- cycles (at most three wal_writer_delay) of the last flushed sequence record: far fewer than
-- the jump. The lost claims' ids are never reissued, the lost run's later calls find no run
-- of that id and are refused, and its job, queued again by the crash, runs on the next claim
-- (canon's at-least-once delivery, as for any crash). If the jumping transaction is itself
-- lost, no one saw its ids (it answers only once durable) and the guard row is gone again.
--
-- The claim is on the critical path of every job: one round trip per batch whose commit waits
-- ~0.7 ms for the disk. Everything others read as done (a result event, a job's success or
-- failure, a decision) still commits durably, and flushes the WAL up to itself, claims
-- included.
create unlogged table canon.run_id_guard (
  only_row boolean primary key default true check (only_row)
);
insert into canon.run_id_guard default values;
revoke all on canon.run_id_guard from public;

create function canon.job_runs_past_restart() returns trigger
language plpgsql security definer set search_path = pg_catalog, canon, pg_temp as $$
begin
  -- once per session: sessions do not outlive a crash
  if current_setting('canon.run_id_guard', true) is distinct from 'seen' then
    if not exists (select from canon.run_id_guard) then
      -- one session moves the ids; the others wait here and then find the row
      perform pg_advisory_xact_lock(hashtext('canon.run_id_guard'));
      if not exists (select from canon.run_id_guard) then
        perform setval(pg_get_serial_sequence('canon.job_runs', 'id'),
                       nextval(pg_get_serial_sequence('canon.job_runs', 'id')) + 10000000);
        insert into canon.run_id_guard default values;
        perform set_config('synchronous_commit', 'on', true);
      end if;
    end if;
    perform set_config('canon.run_id_guard', 'seen', false);
  end if;
  return null;
end $$;

revoke execute on function canon.job_runs_past_restart() from public;

create trigger canon_job_runs_past_restart before insert on canon.job_runs
  for each statement execute function canon.job_runs_past_restart();
