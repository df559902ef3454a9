// One read-only REPEATABLE READ transaction: everything a proof reads comes from one moment.
import type pg from 'pg';
import { tx } from '../db/connect.js';

export async function inSnapshot<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  return tx(pool, async (c) => {
    await c.query('set transaction isolation level repeatable read, read only');
    return fn(c);
  });
}
