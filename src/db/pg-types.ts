// How canon reads bigint columns (positions, ids, counts): as numbers, which fit in 2^53 for
// any realistic ledger and make JSON output and comparisons simple. The CLI sets this for its
// whole process (src/context.ts); as a library canon must not change how an application's own
// `pg` reads int8, so its pools and the queries it runs on an application's client carry
// these parsers with them instead.
import pg from 'pg';

const INT8 = 20;

export const canonTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 && format !== 'binary'
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/** For the CLI process: every pool and client reads int8 as a number. */
export function readInt8AsNumbersEverywhere(): void {
  pg.types.setTypeParser(INT8, (v) => Number(v));
}
