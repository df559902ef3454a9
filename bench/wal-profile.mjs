#!/usr/bin/env node
// What one entity's trip through the three-step pipeline writes: runs the chain bench's canon
// side (bench/chain.mjs) on a fresh database, then reads the WAL the workers wrote with
// pg_walinspect and prints bytes per entity by relation (heap and each index) and by record
// type, with the share of full-page images. Bytes, not seconds: the figures do not depend on
// how busy the machine is, so each change to the write path can be judged on its own.
// The server must be used by nothing else while it runs (its WAL is shared by every
// database), and must ship pg_walinspect (the embedded server does; Debian's postgresql-15
// does). Usage: node bench/wal-profile.mjs [--entities N] [--json]   (DATABASE_URL: a server)
import { parseArgs } from 'node:util';
import { canonChain } from './chain.mjs';
import { pointAtServer } from './lib.mjs';

const { values: args } = parseArgs({
  options: { entities: { type: 'string', default: '1000' }, json: { type: 'boolean', default: false } },
});
const entities = Number(args.entities);
if (!Number.isInteger(entities) || entities < 1) {
  console.error('wal-profile: --entities must be a positive whole number');
  process.exit(2);
}
if (process.env.DATABASE_URL) pointAtServer(process.env.DATABASE_URL);

async function inspectWal(pool, from) {
  await pool.query('create extension if not exists pg_walinspect');
  const to = (await pool.query('select pg_current_wal_lsn()::text as lsn')).rows[0].lsn;
  // one row per block a record touched: the block's relation, the data the record carries for
  // it and the full page image it carried, if any
  const byRelation = await pool.query(
    `select coalesce(c.relname, 'other: ' || b.relfilenode) as relation,
            coalesce(c.relkind::text, '') as kind,
            count(*)::int as blocks,
            count(*) filter (where b.record_type like 'LOCK%')::int as locks,
            sum(b.block_data_length)::bigint as record_bytes,
            coalesce(sum(b.block_fpi_length), 0)::bigint as fpi_bytes
       from pg_get_wal_block_info($1::pg_lsn, $2::pg_lsn) b
       left join pg_class c on pg_relation_filenode(c.oid) = b.relfilenode
      group by 1, 2
      order by sum(b.block_data_length) + coalesce(sum(b.block_fpi_length), 0) desc`,
    [from, to],
  );
  const byType = await pool.query(
    `select "resource_manager/record_type" as record, count::int, record_size::bigint, fpi_size::bigint
       from pg_get_wal_stats($1::pg_lsn, $2::pg_lsn, true) where count > 0 order by record_size + fpi_size desc`,
    [from, to],
  );
  return { relations: byRelation.rows, records: byType.rows };
}

const r = await canonChain({ entities, concurrency: 10, batch: 10, timeoutMs: 900_000, inspectWal });
const per = (n) => Math.round(Number(n) / entities);
if (args.json) {
  console.log(JSON.stringify(r, null, 2));
} else {
  console.log(`${entities} entities, ${r.wal_bytes_per_entity.toLocaleString('en-US')} WAL bytes per entity`);
  console.log('\nper entity, by relation (block data + full-page images):');
  for (const x of r.wal.relations.slice(0, 30)) {
    console.log(
      `  ${x.relation.padEnd(36)} ${x.kind.padEnd(2)} ${String(per(x.record_bytes)).padStart(7)} B  fpi ${String(per(x.fpi_bytes)).padStart(7)} B  blocks ${(x.blocks / entities).toFixed(1)}  row locks ${(x.locks / entities).toFixed(1)}`,
    );
  }
  console.log('\nper entity, by record type:');
  for (const x of r.wal.records.slice(0, 20)) {
    console.log(
      `  ${x.record.padEnd(36)} ${(x.count / entities).toFixed(1).padStart(6)} records ${String(per(x.record_size)).padStart(7)} B  fpi ${String(per(x.fpi_size)).padStart(7)} B`,
    );
  }
}
