// What every command receives: its output streams, output mode and a lazily opened
// database. Commands never touch process.stdout or process.exit directly, so they can be
// driven from tests and composed (River's rivercli does the same with its command bundle).
import type { Writable } from 'node:stream';
import chalk, { Chalk, type ChalkInstance } from 'chalk';
import { type Db, openDb } from './db/connect.js';
import { readInt8AsNumbersEverywhere } from './db/pg-types.js';
import { assertMigrated } from './migrate.js';

// a command process reads bigint columns as numbers on every connection (src/db/pg-types.ts)
readInt8AsNumbersEverywhere();

export interface GlobalOptions {
  json?: boolean;
  debug?: boolean;
  color?: boolean;
}

export class Ctx {
  readonly json: boolean;
  readonly debug: boolean;
  readonly c: ChalkInstance;
  private dbPromise?: Promise<Db>;

  constructor(
    opts: GlobalOptions,
    readonly stdout: Writable = process.stdout,
    readonly stderr: Writable = process.stderr,
  ) {
    this.json = !!opts.json;
    this.debug = !!opts.debug;
    const tty = (stdout as NodeJS.WriteStream).isTTY === true;
    const useColor = opts.color !== false && !process.env.NO_COLOR && tty && !this.json;
    this.c = useColor ? chalk : new Chalk({ level: 0 });
  }

  /**
   * Opens the database (starting the embedded one if needed); the schema must be current.
   * unlimitedStatements: for commands that read or write a whole ledger in a statement
   * (backup, restore, export, verify), which no statement or reply timeout may cut short.
   */
  async db(opts: { migrated?: boolean; max?: number; unlimitedStatements?: boolean } = {}): Promise<Db> {
    this.dbPromise ??= openDb({ max: opts.max, unlimitedStatements: opts.unlimitedStatements }).then(async (db) => {
      if (opts.migrated !== false) {
        const client = await db.pool.connect();
        try {
          await assertMigrated(client);
        } catch (e) {
          client.release();
          await db.close();
          throw e;
        }
        client.release();
      }
      return db;
    });
    return this.dbPromise;
  }

  async close(): Promise<void> {
    if (this.dbPromise) {
      const db = await this.dbPromise.catch(() => undefined);
      await db?.close().catch(() => {});
    }
  }

  /** Data: JSON with --json, otherwise the human rendering. Always to stdout. */
  print<T>(data: T, human: (d: T) => string): void {
    if (this.json) this.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    else {
      const text = human(data);
      if (text) this.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    }
  }

  /** Messages for people (progress, hints) go to stderr so stdout stays machine-readable. */
  info(msg: string): void {
    this.stderr.write(`${msg}\n`);
  }
}
