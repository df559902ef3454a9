-- canon migration | class: core | breaking: no
-- A decision job that goes back to the queue (retry after a failure, rescue after its TTL,
-- release on shutdown) while a newer decision about the same entity is already queued used
-- to violate jobs_one_queued_decision: the UPDATE failed, so fail_run and release_run raised
-- and rescue_stuck aborted as a whole, leaving every stuck run of the batch unrescued, tick
-- after tick, for good. (A new event during a decision is the ordinary way to get there.)
-- The queued decision reads the entity's whole history when it runs, so the returning one
-- has nothing left to decide: it ends as cancelled, reason superseded, instead.
create function canon.jobs_decision_superseded() returns trigger
language plpgsql as $$
begin
  -- the entity's row lock orders this against appends, whose core trigger queues decisions
  perform 1 from canon.entities where id = new.entity_id for update;
  if exists (select 1 from canon.jobs q
              where q.entity_id = new.entity_id and q.lane = 'decision' and q.status = 'queued' and q.id <> new.id) then
    new.status := 'cancelled';
    new.finished_at := now();
    new.locked_by := null;
    new.last_reason := 'superseded';
    new.last_error := coalesce(new.last_error, 'a newer decision about the entity is queued');
  end if;
  return new;
end $$;

create trigger canon_jobs_decision_superseded before update of status on canon.jobs
  for each row when (old.lane = 'decision' and old.status <> 'queued' and new.status = 'queued')
  execute function canon.jobs_decision_superseded();
