// The library as an application uses it, through its two entries (src/index.ts is `canon`,
// src/testing/index.ts is `canon/testing`), on a real Postgres: appending inside the caller's
// own transaction (committed, rolled back, a stale expected seq), numbers on a pool that reads
// int8 as text, a worker started from code, the health snapshot; and the testing helpers: the
// authority and handlers without a worker, and runPipeline on a throw-away database.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  appendEvent,
  CanonError,
  createLogger,
  definePipeline,
  EXIT,
  type HandlerContext,
  healthSnapshot,
  PermanentError,
  PreconditionError,
  RetryableError,
  readHistory,
  startWorker,
} from '../src/index.js';
import { decide, makeEntity, runHandler, runPipeline } from '../src/testing/index.js';
import { createEmptyDb, createTestDb, type TestDb, waitFor } from './helpers.js';

const invoices = definePipeline({
  name: 'invoices',
  flags: { SEND_EMAIL: { default: false, description: 'email the PDF' } },
  jobTypes: {
    render: { maxAttempts: 3, timeoutSeconds: 5, backoff: { baseSeconds: 0.05, maxSeconds: 0.1 } },
    email: { maxAttempts: 2, timeoutSeconds: 5, backoff: { baseSeconds: 0.05, maxSeconds: 0.1 } },
  },
  authority(entity, flags) {
    const has = (k: string) => entity.events.some((e) => e.kind === k);
    if (has('render.failed') || has('email.failed')) return { done: true, outcome: 'failed' };
    if (!has('render.succeeded')) return { required: [{ type: 'render', payload: { format: 'pdf' } }] };
    if (flags.isOn('SEND_EMAIL') && !has('email.succeeded')) return { required: [{ type: 'email' }] };
    return { done: true, outcome: 'completed' };
  },
  handlers: {
    async render({ entity, payload }: HandlerContext) {
      const total = entity.events[0]?.payload.total;
      if (total === 'poison') throw new PermanentError('cannot render a poisoned invoice');
      if (typeof total !== 'number') throw new PreconditionError('invoice.created has no numeric total');
      return { pdf: `${entity.id}.${payload.format}`, total };
    },
    async email({ attempt }) {
      if (attempt === 1) throw new RetryableError('mail server busy');
      return { sent: true };
    },
  },
});

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('library');
});
afterAll(async () => db.end());

describe('appending in the application’s own transaction', () => {
  it('commits with the caller’s writes: the event and its decision job; a rollback leaves neither', async () => {
    await db.pool.query('create table invoices (id serial primary key, customer text not null, total numeric)');
    const client = await db.pool.connect();
    try {
      await client.query('begin');
      const { rows } = await client.query('insert into invoices (customer, total) values ($1, $2) returning id', [
        'ACME',
        99.5,
      ]);
      const e = await appendEvent(client, {
        entityId: `invoice-${rows[0].id}`,
        kind: 'invoice.created',
        payload: { total: 99.5 },
      });
      // not visible outside the transaction yet
      expect((await readHistory(db.pool, e.entity_id)).length).toBe(0);
      await client.query('commit');

      await client.query('begin');
      await client.query('insert into invoices (customer, total) values ($1, $2)', ['Nobody', 1]);
      await appendEvent(client, { entityId: 'invoice-rolled-back', kind: 'invoice.created', payload: { total: 1 } });
      await client.query('rollback');
    } finally {
      client.release();
    }
    const committed = await readHistory(db.pool, 'invoice-1');
    expect(committed.map((e) => [e.seq, e.kind])).toEqual([[1, 'invoice.created']]);
    const jobs = await db.pool.query('select entity_id, lane from canon.jobs where entity_id like $1', ['invoice-%']);
    expect(jobs.rows).toEqual([{ entity_id: 'invoice-1', lane: 'decision' }]);
    expect(await readHistory(db.pool, 'invoice-rolled-back')).toEqual([]);
    expect((await db.pool.query('select count(*)::int as n from invoices')).rows[0].n).toBe(1);
  });

  it('a stale expectedSeq is a CanonError with EXIT.CONFLICT, and nothing is written', async () => {
    const err = await appendEvent(db.pool, { entityId: 'invoice-1', kind: 'invoice.paid', expectedSeq: 0 }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(CanonError);
    expect(err.exitCode).toBe(EXIT.CONFLICT);
    expect((await readHistory(db.pool, 'invoice-1')).length).toBe(1);
  });

  it('positions are numbers on an application pool that reads int8 as text (pg’s default)', async () => {
    const textInt8 = new pg.Pool({
      connectionString: db.url,
      max: 1,
      types: {
        getTypeParser: ((oid: number, f?: 'text') =>
          oid === 20 ? (v: string) => v : pg.types.getTypeParser(oid, f)) as never,
      },
    });
    try {
      expect(typeof (await textInt8.query('select 1::int8 as n')).rows[0].n).toBe('string');
      const e = await appendEvent(textInt8, {
        entityId: 'invoice-int8',
        kind: 'invoice.created',
        payload: { total: 1 },
      });
      expect(typeof e.position).toBe('number');
      const [read] = await readHistory(textInt8, 'invoice-int8');
      expect(read.position).toBe(e.position);
      expect(typeof (await healthSnapshot(textInt8)).jobs_queued.total).toBe('number');
    } finally {
      await textInt8.end();
    }
  });
});

describe('a worker started from code', () => {
  it('runs the pipeline given as a value until stopped; done resolves with its counters', async () => {
    for (const id of ['w-1', 'w-2'])
      await appendEvent(db.pool, { entityId: id, kind: 'invoice.created', payload: { total: 10 } });
    const seen: string[] = [];
    const w = await startWorker({
      pipeline: invoices,
      connectionString: db.url,
      logger: createLogger({ level: 'silent' }),
      pollMs: 100,
      onJobDone: (job, outcome) => seen.push(`${job.type}:${outcome}`),
    });
    expect(w.id).toMatch(/^work-/);
    await waitFor(
      async () =>
        (await readHistory(db.pool, 'w-1')).some((e) => e.kind === 'render.succeeded') &&
        (await readHistory(db.pool, 'w-2')).some((e) => e.kind === 'render.succeeded'),
      { what: 'both invoices rendered' },
    );
    w.stop();
    const stats = await w.done;
    expect(stats.succeeded).toBeGreaterThanOrEqual(2);
    expect(seen.filter((s) => s === 'render:succeeded').length).toBeGreaterThanOrEqual(2);
    const health = await healthSnapshot(db.pool);
    expect(health.dead_last_24h).toBe(0);
    expect(['OK', 'WARNING', 'CRITICAL', 'UNKNOWN']).toContain(health.status);
  });

  it('an invalid pipeline or an unmigrated database is one CanonError line', async () => {
    const bad = await startWorker({
      pipeline: { ...invoices, handlers: {} } as never,
      connectionString: db.url,
    }).catch((e) => e);
    expect(bad).toBeInstanceOf(CanonError);
    expect(bad.message).toBe('pipeline: handlers.render: job type "render" has no handler');
    const empty = await createEmptyDb('libempty');
    try {
      const err = await startWorker({ pipeline: invoices, connectionString: empty.url }).catch((e) => e);
      expect(err).toBeInstanceOf(CanonError);
      expect(err.exitCode).toBe(EXIT.DATABASE);
      expect(err.message).toMatch(/missing \d+ canon migration\(s\).*run `canon migrate`/);
    } finally {
      await empty.end();
    }
  });
});

describe('canon/testing without a database', () => {
  const created = makeEntity('inv-1', [{ kind: 'invoice.created', payload: { total: 12 } }]);

  it('decide: the jobs the decider would require, the flags read, and what is outstanding is skipped', () => {
    expect(decide(invoices, created)).toEqual({
      required: [{ type: 'render', payload: { format: 'pdf' }, priority: 0 }],
      skipped: [],
      done: false,
      outcome: null,
      flagsRead: {},
    });
    const outstanding = makeEntity('inv-1', [
      { kind: 'invoice.created', payload: { total: 12 } },
      'job.render.required',
    ]);
    expect(decide(invoices, outstanding).skipped).toEqual(['render']);
    expect(decide(invoices, outstanding).required).toEqual([]);
    const rendered = makeEntity('inv-1', [
      { kind: 'invoice.created', payload: { total: 12 } },
      'job.render.required',
      'render.succeeded',
    ]);
    expect(decide(invoices, rendered)).toMatchObject({
      done: true,
      outcome: 'completed',
      flagsRead: { SEND_EMAIL: false },
    });
    expect(decide(invoices, rendered, { flags: { SEND_EMAIL: true } })).toMatchObject({
      required: [{ type: 'email' }],
      flagsRead: { SEND_EMAIL: true },
    });
  });

  it('decide: an authority that throws or answers nonsense fails with the message its run would record', () => {
    const throwing = definePipeline({
      ...invoices,
      authority: () => {
        throw new Error('boom');
      },
    });
    expect(() => decide(throwing, created)).toThrow('authority threw: boom');
    const unknown = { ...invoices, authority: () => ({ required: [{ type: 'fax' }] }) } as never;
    expect(() => decide(unknown, created)).toThrow('authority required unknown job type "fax"');
  });

  it('makeEntity numbers events as the ledger does', () => {
    const e = makeEntity('x', ['a', { kind: 'b', payload: { n: 1 }, actor: 'me' }]);
    expect(e.events.map((ev) => [ev.seq, ev.position, ev.kind, ev.actor, ev.correlation_id])).toEqual([
      [1, 1, 'a', 'test', 'x'],
      [2, 2, 'b', 'me', 'x'],
    ]);
  });

  it('runHandler: results as JSON, and failures ended by canon’s rules', async () => {
    expect(await runHandler(invoices, 'render', { entity: created, payload: { format: 'pdf' } })).toEqual({
      outcome: 'succeeded',
      result: { pdf: 'inv-1.pdf', total: 12 },
    });
    const poisoned = makeEntity('inv-2', [{ kind: 'invoice.created', payload: { total: 'poison' } }]);
    expect(await runHandler(invoices, 'render', { entity: poisoned })).toEqual({
      outcome: 'dead',
      reason: 'handler_error',
      error: 'PermanentError: cannot render a poisoned invoice',
    });
    expect(await runHandler(invoices, 'render', { entity: makeEntity('inv-3', ['invoice.created']) })).toMatchObject({
      outcome: 'dead',
      reason: 'precondition_failed',
    });
    expect(await runHandler(invoices, 'email', { entity: created, attempt: 1 })).toEqual({
      outcome: 'retry',
      reason: 'handler_error',
      error: 'RetryableError: mail server busy',
    });
    expect(await runHandler(invoices, 'email', { entity: created, attempt: 2 })).toEqual({
      outcome: 'succeeded',
      result: { sent: true },
    });
  });

  it('runHandler: the timeout aborts the signal; the last attempt ends dead; a result JSON cannot hold is dead', async () => {
    const slow = definePipeline({
      name: 'slow',
      jobTypes: { wait: { maxAttempts: 2 }, odd: {} },
      authority: () => ({ done: true }),
      handlers: {
        wait: ({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
        odd: async () => ({ n: 10n }),
      },
    });
    const entity = makeEntity('s', ['x']);
    expect(await runHandler(slow, 'wait', { entity, timeoutSeconds: 0.05 })).toMatchObject({
      outcome: 'retry',
      reason: 'timeout',
    });
    expect(await runHandler(slow, 'wait', { entity, timeoutSeconds: 0.05, attempt: 2 })).toMatchObject({
      outcome: 'dead',
      reason: 'timeout',
    });
    const odd = await runHandler(slow, 'odd', { entity });
    expect(odd).toMatchObject({ outcome: 'dead', reason: 'handler_error' });
    expect(odd.outcome === 'dead' && odd.error).toMatch(/not JSON-serialisable/);
  });
});

describe('canon/testing: runPipeline on a throw-away database', () => {
  const databases = async () =>
    (await db.pool.query("select datname from pg_database where datname ~ '^canon_test_[0-9a-f]{12}$'")).rows.map(
      (r) => r.datname as string,
    );

  it('runs entities through the worker and returns events, jobs, runs, the trace and the status; then drops the database', async () => {
    const before = await databases();
    const run = await runPipeline(
      invoices,
      [
        { id: 'a', events: [{ kind: 'invoice.created', payload: { total: 5 } }] },
        { id: 'b', events: [{ kind: 'invoice.created', payload: { total: 'poison' } }] },
      ],
      { serverUrl: inject('adminUrl'), flags: { SEND_EMAIL: true } },
    );
    expect(run.settled).toBe(true);
    const a = run.entities.a;
    expect(a.status).toBe('completed');
    expect(a.events.map((e) => e.kind)).toEqual([
      'invoice.created',
      'job.render.required',
      'render.succeeded',
      'job.email.required',
      'email.succeeded',
    ]);
    // email failed once (RetryableError) and succeeded on its second attempt
    const email = a.jobs.find((j) => j.type === 'email')!;
    expect([email.status, email.attempts]).toEqual(['succeeded', 2]);
    expect(a.runs.filter((r) => r.type === 'email').map((r) => r.status)).toEqual(['failed', 'succeeded']);
    expect(a.trace.counts).toMatchObject({ events: 5, dead_jobs: 0 });
    const b = run.entities.b;
    expect(b.status).toBe('failed');
    expect(b.events.map((e) => e.kind)).toEqual(['invoice.created', 'job.render.required', 'render.failed']);
    expect(b.trace.counts.dead_jobs).toBe(1);
    expect(run.stats.dead).toBe(1);
    expect(await databases()).toEqual(before);
    expect(before).not.toContain(run.database);
  }, 120_000);

  it('keepDatabase leaves it for inspection; a server that refuses is one CanonError line', async () => {
    const run = await runPipeline(
      invoices,
      [{ id: 'k', events: [{ kind: 'invoice.created', payload: { total: 1 } }] }],
      {
        serverUrl: inject('adminUrl'),
        keepDatabase: true,
      },
    );
    expect(await databases()).toContain(run.database);
    await db.pool.query(`drop database "${run.database}" with (force)`);
    const u = new URL(inject('adminUrl'));
    u.password = 'wrong-password-for-test';
    u.port = '1';
    const err = await runPipeline(invoices, [{ id: 'k', events: ['invoice.created'] }], {
      serverUrl: u.toString(),
    }).catch((e) => e);
    expect(err).toBeInstanceOf(CanonError);
    expect(err.message).toMatch(/^runPipeline: cannot create a throw-away database on .*: cannot connect/);
    expect(err.message).not.toContain('wrong-password-for-test');
  }, 120_000);
});
