-- canon migration | class: core
-- `canon diagnose` names the worker a lane heard from last, alive or stopped ("no live
-- decision worker: the last one, tick-…, stopped 40s ago"). Every `canon tick` and every
-- `canon work` leaves a row when it stops, so the stopped rows grow with time; this index
-- finds a lane's most recently stopped worker by walking back from the latest stop. The
-- workers not stopped are read through workers_heartbeat_idx. The index is partial on
-- stopped_at, which a live worker's heartbeat leaves null: heartbeats add no entry to it.
create index workers_stopped_idx on canon.workers (stopped_at) where stopped_at is not null;
