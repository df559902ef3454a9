-- canon migration | class: core | breaking: no
-- What a decision saw and chose (flag values used, jobs required or skipped, done), kept on
-- its run so that `canon trace` can show why the pipeline went where it went.
alter table canon.job_runs add column detail jsonb;
