// Where the server a command reads from stands in replication. canon reads from a streaming
// replica when given a read URL (--read-url, CANON_READ_URL); what it shows is then as old as
// the replica's replay. On a primary the expression is null.

/**
 * The read server's replication state as jsonb, null on a primary (not in recovery):
 * - lag_seconds: 0 while the WAL receiver streams and everything received is replayed;
 *   otherwise the age of the last replayed commit (the usual measure; on a quiet primary it
 *   overstates the lag, never understates it)
 * - replay_behind_bytes: WAL received but not replayed yet
 * - last_replayed_at: the primary's commit time of the last replayed transaction
 * - receiver: the WAL receiver's status ('streaming', …), 'stopped' when none runs, 'hidden'
 *   when the role may not see it (pg_read_all_stats shows it)
 */
export const REPLICA_STATE = `(select case when pg_is_in_recovery() then jsonb_build_object(
         'lag_seconds', case when receive_lsn = replay_lsn and receiver in ('streaming', 'hidden') then 0
                             else round(greatest(0, extract(epoch from now() - replayed_at))::numeric, 3)::float8 end,
         'replay_behind_bytes', coalesce(pg_wal_lsn_diff(receive_lsn, replay_lsn), 0)::float8,
         'last_replayed_at', replayed_at,
         'receiver', receiver) end
    from (select pg_last_wal_receive_lsn() as receive_lsn, pg_last_wal_replay_lsn() as replay_lsn,
                 pg_last_xact_replay_timestamp() as replayed_at,
                 coalesce((select coalesce(w.status, 'hidden') from pg_stat_wal_receiver w), 'stopped') as receiver) r)`;
