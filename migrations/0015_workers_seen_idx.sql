-- canon migration | class: core
-- `canon diagnose` names the worker a lane heard from last, alive or stopped ("no live
-- decision worker: the last one, tick-…, stopped 40s ago"). Every `canon tick` and every
-- `canon work` registers a row, so the table grows with time; this index finds a lane's newest
-- row by walking back from the latest heartbeat instead of reading them all.
create index workers_seen_idx on canon.workers (heartbeat_at);
