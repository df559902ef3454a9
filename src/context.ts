// What every command receives: its output streams, output mode and a lazily opened
// database. Commands never touch process.stdout or process.exit directly, so they can be
// driven from tests and composed (River's rivercli does the same with its command bundle).
import type { Writable } from 'node:stream';
import chalk, { Chalk, type ChalkInstance } from 'chalk';
import { type Db, openDb, readTarget } from './db/connect.js';
import { readInt8AsNumbersEverywhere } from './db/pg-types.js';
import type { DbTarget } from './db/url.js';
import { assertMigrated } from './migrate.js';

// a command process reads bigint columns as numbers on every connection (src/db/pg-types.ts)
readInt8AsNumbersEverywhere();

export interface GlobalOptions {
  json?: boolean;
  debug?: boolean;
  color?: boolean;
  /** --read-url: the server read-only commands read from (a streaming replica, say) */
  readUrl?: string;
}

/**
 * unlimitedStatements: for commands that read or write a whole ledger in a statement (backup,
 * restore, export, verify), which no statement or reply timeout may cut short.
 */
type DbOptions = { migrated?: boolean; max?: number; unlimitedStatements?: boolean };

export class Ctx {
  readonly json: boolean;
  readonly debug: boolean;
  readonly c: ChalkInstance;
  private dbPromise?: Promise<Db>;
  private readPromise?: Promise<Db>;
  private readonly readUrlFlag?: string;

  constructor(
    opts: GlobalOptions,
    readonly stdout: Writable = process.stdout,
    readonly stderr: Writable = process.stderr,
  ) {
    this.json = !!opts.json;
    this.readUrlFlag = opts.readUrl;
    this.debug = !!opts.debug;
    const tty = (stdout as NodeJS.WriteStream).isTTY === true;
    const useColor = opts.color !== false && !process.env.NO_COLOR && tty && !this.json;
    this.c = useColor ? chalk : new Chalk({ level: 0 });
  }

  /**
   * The database every write goes to: DATABASE_URL, else the embedded one (started if needed).
   * The schema must be current (see DbOptions).
   */
  async db(opts: DbOptions = {}): Promise<Db> {
    this.dbPromise ??= openChecked(opts);
    return this.dbPromise;
  }

  /**
   * The database a read-only command reads: the read URL (--read-url, else CANON_READ_URL),
   * a streaming replica say, when one is set; otherwise the same database as db(). Only
   * commands that never write call it (cli.ts refuses --read-url for the others).
   */
  async readDb(opts: DbOptions = {}): Promise<Db> {
    const target = this.readTarget();
    if (!target) return this.db(opts);
    this.readPromise ??= openChecked(opts, target);
    return this.readPromise;
  }

  /** The read URL's target, or undefined when reads go to DATABASE_URL too. */
  readTarget(): DbTarget | undefined {
    return readTarget(this.readUrlFlag);
  }

  async close(): Promise<void> {
    for (const p of [this.dbPromise, this.readPromise]) {
      const db = await p?.catch(() => undefined);
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

/** Opens a database and, unless told otherwise, checks that its schema is current. */
function openChecked(opts: DbOptions, target?: DbTarget): Promise<Db> {
  return openDb({ max: opts.max, unlimitedStatements: opts.unlimitedStatements, target }).then(async (db) => {
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
}
