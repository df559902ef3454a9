// Least privilege (migrations/0006_privileges.sql) on a real Postgres: the full matrix role × table ×
// SELECT/INSERT/UPDATE/DELETE/TRUNCATE, tried for real as login users of each role; the
// commands each role runs work when connected as that role and nothing else does; the owner,
// who alone can change the ledger, is caught by `canon audit verify`; and `canon contracts
// check` catches a SECURITY DEFINER function that is unpinned or executable by PUBLIC.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvent } from '../src/ledger.js';
import { canon, createTestDb, oneLineError, type RunResult, type TestDb } from './helpers.js';
import { runBatch } from './support/batch.js';
import { checkInvariants } from './support/invariants.js';
import { hasStackTrace, report } from './support/report.js';

type Priv = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE' | 'TRUNCATE';
type Role = 'canon_reader' | 'canon_worker' | 'canon_operator' | 'none';
const PRIVS: Priv[] = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'];
const ROLES: Role[] = ['canon_reader', 'canon_worker', 'canon_operator', 'none'];
const COMPAT_VIEWS = [
  'public.document_entities',
  'public.events',
  'public.executor_jobs',
  'public.executor_job_runs',
  'public.feature_flags',
];

/** What each role may do beyond reading; every other cell is "denied". Column lists are column grants. */
const WRITES: Record<Exclude<Role, 'none'>, Partial<Record<string, Partial<Record<Priv, 'all' | string[]>>>>> = {
  canon_reader: {},
  canon_worker: {
    'canon.workers': { INSERT: 'all', UPDATE: 'all' },
    'canon.run_rejections': { INSERT: 'all' },
    'canon.job_runs': { UPDATE: ['detail'] },
    'canon.job_types': {
      INSERT: 'all',
      UPDATE: [
        'backoff_base_seconds',
        'backoff_max_seconds',
        'breaker_cooldown_seconds',
        'breaker_threshold',
        'declared_by',
        'max_attempts',
        'timeout_seconds',
        'updated_at',
      ],
    },
    'canon.flags': { INSERT: 'all' },
  },
  canon_operator: {
    'canon.jobs': { UPDATE: ['finished_at', 'hold_reason', 'last_error', 'locked_by', 'status', 'updated_at'] },
    'canon.job_runs': { UPDATE: ['error', 'finished_at', 'reason', 'status'] },
    'canon.job_actions': { INSERT: 'all' },
    'canon.settings': { INSERT: 'all', UPDATE: ['updated_at', 'updated_by', 'value'] },
    'public.feature_flags': { UPDATE: 'all' },
  },
};

function expected(role: Role, table: string, priv: Priv, columns: string[]): 'all' | 'denied' | string {
  if (role === 'none') return 'denied';
  if (priv === 'SELECT') return 'all';
  const w = WRITES[role][table]?.[priv];
  if (!w) return 'denied';
  return w === 'all' || w.length === columns.length ? 'all' : [...w].sort().join(',');
}

let db: TestDb;
const users: Record<Role, { name: string; url: string }> = {} as never;
const tsaDir = fs.mkdtempSync(path.join(os.tmpdir(), 'canon-tsa-priv-'));
const tsaEnv = { CANON_TSA_KEY_DIR: tsaDir };

beforeAll(async () => {
  db = await createTestDb('privileges');
  const tag = randomBytes(4).toString('hex');
  for (const role of ROLES) {
    const name = `t_${role.replace('canon_', '')}_${tag}`;
    const password = randomBytes(12).toString('hex');
    await db.pool.query(`create user ${name} login password '${password}'${role === 'none' ? '' : ` in role ${role}`}`);
    const u = new URL(db.url);
    u.username = name;
    u.password = password;
    users[role] = { name, url: u.toString() };
  }
});

afterAll(async () => {
  for (const role of ROLES) {
    if (!users[role]) continue;
    await db.pool
      .query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = $1`, [users[role].name])
      .catch(() => {});
    await db.pool.query(`drop owned by ${users[role].name}`).catch(() => {});
    await db.pool.query(`drop user if exists ${users[role].name}`).catch(() => {});
  }
  await db.end();
});

/** Tries one statement as the role inside a savepoint: allowed, or denied by a privilege check (42501). */
async function attempt(c: pg.Client, sql: string): Promise<boolean> {
  await c.query('savepoint p');
  try {
    await c.query(sql);
    return true;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === '42501') return false;
    return true; // past the privilege check: refused later (NOT NULL, a trigger, a FK, ...) for another reason
  } finally {
    await c.query('rollback to savepoint p');
  }
}

async function catalogPrivilege(user: string, table: string, priv: Priv, columns: string[]): Promise<string> {
  if (priv !== 'UPDATE' && priv !== 'INSERT')
    return (await db.pool.query(`select has_table_privilege($1, $2, $3) as ok`, [user, table, priv])).rows[0].ok
      ? 'all'
      : 'denied';
  const ok = (
    await db.pool.query(
      `select array(select col from unnest($3::text[]) col where has_column_privilege($1, $2, col, $4) order by col) as cols`,
      [user, table, columns, priv],
    )
  ).rows[0].cols as string[];
  return ok.length === 0 ? 'denied' : ok.length === columns.length ? 'all' : ok.join(',');
}

describe('the privilege matrix', () => {
  it('role × table × SELECT/INSERT/UPDATE/DELETE/TRUNCATE is what 0006_privileges.sql grants, tried for real, and only the owner can change the ledger', async () => {
    const tables = (
      await db.pool.query(
        `select c.relnamespace::regnamespace::text || '.' || c.relname as name, c.relkind = 'v' as view,
                array(select a.attname::text from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                       and a.attgenerated = '' and a.attidentity = '' order by a.attname) as columns
           from pg_class c
          where (c.relnamespace = 'canon'::regnamespace and c.relkind in ('r', 'p', 'v'))
             or c.relnamespace::regnamespace::text || '.' || c.relname = any ($1)
          order by 1`,
        [COMPAT_VIEWS],
      )
    ).rows as { name: string; view: boolean; columns: string[] }[];
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining(['canon.events', 'canon.entities', 'canon.jobs', 'canon.job_runs', ...COMPAT_VIEWS]),
    );
    const mismatches: string[] = [];
    const matrix: Record<string, Record<string, string>> = {};
    let tried = 0;
    for (const role of ROLES) {
      const c = new pg.Client({ connectionString: users[role].url });
      await c.connect();
      await c.query('begin');
      try {
        for (const t of tables) {
          for (const priv of PRIVS) {
            let actual: string;
            if (t.view) {
              // a view refuses some statements for reasons of its own (not updatable, not a
              // table) before any privilege check, so for views the catalog answers
              actual = await catalogPrivilege(users[role].name, t.name, priv, t.columns);
            } else if (priv === 'UPDATE') {
              const ok: string[] = [];
              for (const col of t.columns) {
                tried++;
                if (await attempt(c, `update ${t.name} set "${col}" = "${col}" where false`)) ok.push(col);
              }
              actual = ok.length === 0 ? 'denied' : ok.length === t.columns.length ? 'all' : ok.sort().join(',');
            } else {
              tried++;
              const sql = {
                SELECT: `select * from ${t.name} limit 0`,
                INSERT: `insert into ${t.name} default values`,
                DELETE: `delete from ${t.name} where false`,
                TRUNCATE: `truncate ${t.name}`,
              }[priv];
              actual = (await attempt(c, sql)) ? 'all' : 'denied';
            }
            const want = expected(role, t.name, priv, t.columns);
            matrix[`${role} ${t.name}`] ??= {};
            matrix[`${role} ${t.name}`][priv] = actual;
            if (actual !== want) mismatches.push(`${role} ${priv} ${t.name}: ${actual}, expected ${want}`);
          }
        }
      } finally {
        await c.query('rollback');
        await c.end();
      }
    }
    if (process.env.CANON_PRINT_MATRIX) console.table(matrix);
    expect(mismatches).toEqual([]);
    // the ledger: nobody but the owner writes it, directly
    for (const role of ROLES)
      for (const t of ['canon.events', 'canon.entities'])
        for (const p of ['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) expect(matrix[`${role} ${t}`][p]).toBe('denied');
    report('privilege matrix', {
      runs: tried,
      roles: ROLES.length,
      tables: tables.length,
      mismatches: mismatches.length,
    });
  });

  it('the catalog agrees: no role has any write privilege on the ledger or INSERT on jobs, and a user outside the roles cannot even see the schema', async () => {
    const r = (
      await db.pool.query(
        `select r.role, t.t, p.p
           from unnest(array['canon_reader', 'canon_worker', 'canon_operator', $1]) r(role),
                unnest(array['canon.events', 'canon.entities', 'canon.jobs']) t(t),
                unnest(array['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p(p)
          where case when p.p in ('INSERT', 'UPDATE') then has_any_column_privilege(r.role, t.t, p.p)
                     else has_table_privilege(r.role, t.t, p.p) end`,
        [users.none.name],
      )
    ).rows;
    // the operator's column grants on jobs (cancel) are the only write anywhere near here
    expect(r.filter((x) => !(x.role === 'canon_operator' && x.t === 'canon.jobs' && x.p === 'UPDATE'))).toEqual([]);
    const none = (await db.pool.query(`select has_schema_privilege($1, 'canon', 'USAGE') as usage`, [users.none.name]))
      .rows[0];
    expect(none.usage).toBe(false);
  });
});

describe('each role runs its commands, and only those', () => {
  const as = (role: Role, args: string[], env: Record<string, string> = {}) =>
    canon(args, { url: users[role].url, env: { ...tsaEnv, ...env } });
  // many commands of one role through the binary's main() in one process (sequentially, in order)
  const asMany = (role: Role, argss: string[][]) =>
    runBatch(argss.map((args) => ({ args, env: { ...tsaEnv, DATABASE_URL: users[role].url } })));
  const refused = (r: RunResult, what: string) => {
    expect(r.exitCode, `${what}: ${r.stdout}${r.stderr}`).not.toBe(0);
    expect(hasStackTrace(r.stderr), r.stderr).toBe(false);
    return oneLineError(r);
  };

  it('canon_worker: appends, runs `canon work` end to end and `canon tick`; cannot steer or touch the ledger directly', async () => {
    for (const a of await asMany(
      'canon_worker',
      [0, 1, 2].map((i) => [
        'events',
        'append',
        `pw-${i}`,
        'document.created',
        '--payload',
        JSON.stringify({ content: `doc ${i}` }),
      ]),
    )) {
      expect(a.exitCode, a.stderr).toBe(0);
    }
    const w = await as('canon_worker', ['work', '--once', '--json']);
    expect(w.exitCode, w.stderr).toBe(0);
    const done = (
      await db.pool.query(
        `select count(*)::int as n from canon.events where kind = 'anchor.succeeded' and entity_id like 'pw-%'`,
      )
    ).rows[0].n;
    expect(done).toBe(3);
    // the workers row was written as the worker: it registered itself
    expect(
      (
        await db.pool.query(`select count(*)::int as n from canon.workers where id = $1`, [
          JSON.parse(w.stdout).worker_id,
        ])
      ).rows[0].n,
    ).toBe(1);
    const [t, f, g] = await asMany('canon_worker', [
      ['tick', '--max-jobs', '5', '--json'],
      ['flags', 'disable', 'D1_RUN_TSA_ENABLED'],
      ['gateway', 'mode', 'strict'],
    ]);
    expect(t.exitCode, t.stderr).toBe(0);
    expect(refused(f, 'worker flags disable')).toMatch(/permission denied/);
    expect(refused(g, 'worker gateway mode')).toMatch(/permission denied/);
    const c = new pg.Client({ connectionString: users.canon_worker.url });
    await c.connect();
    try {
      for (const sql of [
        `update canon.events set payload = '{}' where entity_id = 'pw-0'`,
        `delete from canon.events where entity_id = 'pw-0'`,
        `truncate canon.events`,
        `insert into canon.events (entity_id, seq, kind, correlation_id, actor, created_at, hash) values ('pw-0', 99, 'x', 'c', 'a', now(), '\\x00')`,
        `insert into canon.jobs (lane, type, entity_id, max_attempts, correlation_id) values ('execution', 'protect', 'pw-0', 1, 'c')`,
        `update canon.jobs set status = 'succeeded' where entity_id = 'pw-0'`,
        `update canon.entities set head_seq = 0 where id = 'pw-0'`,
        // a non-definer helper runs with the caller's rights, so it cannot be used to get round the grants
        `select canon.bury_job(j, 'handler_error', 'forged', null, 'x') from canon.jobs j where entity_id = 'pw-0' limit 1`,
        `select canon.flag_change('D1_RUN_TSA_ENABLED', 'disable', null, 'w', 'forged')`,
      ]) {
        await expect(c.query(sql), sql).rejects.toMatchObject({ code: '42501' });
      }
    } finally {
      await c.end();
    }
  });

  it('canon_operator: flags, breakers, pause/resume, jobs retry/cancel and gateway mode; cannot run workers or append', async () => {
    const steer = [
      ['flags', 'create', 'OP_FLAG', '--reason', 'test'],
      ['flags', 'enable', 'OP_FLAG', '--reason', 'on'],
      ['flags', 'rollout', 'OP_FLAG', '30', '--reason', 'some'],
      ['flags', 'rollback', 'OP_FLAG', '--reason', 'back'],
      ['flags', 'kill', 'OP_FLAG', '--reason', 'stop it'],
      ['flags', 'history', 'OP_FLAG'],
      ['breakers', 'open', 'tsa', '--reason', 'maintenance'],
      ['breakers', 'close', 'tsa', '--reason', 'done'],
      ['jobs', 'pause', 'anchor', '--reason', 'hold'],
      ['jobs', 'resume', 'anchor', '--reason', 'go'],
      ['gateway', 'mode', 'strict'],
      ['gateway', 'mode', 'compat'],
    ].map((a) => [...a, '--json']);
    for (const [i, r] of (await asMany('canon_operator', steer)).entries())
      expect(r.exitCode, `${steer[i].join(' ')}: ${r.stderr}`).toBe(0);
    // a dead job to retry and a queued one to cancel
    await appendEvent(db.pool, { entityId: 'po-dead', kind: 'document.created', payload: { content: 'x #permanent' } });
    const w = await as('canon_worker', ['work', '--once']);
    expect(w.exitCode, w.stderr).toBe(0);
    const dead = (await db.pool.query(`select id from canon.jobs where entity_id = 'po-dead' and status = 'failed'`))
      .rows[0].id;
    const [r1] = await asMany('canon_operator', [['jobs', 'retry', String(dead), '-m', 'fixed', '--json']]);
    expect(r1.exitCode, r1.stderr).toBe(0);
    const retried = JSON.parse(r1.stdout);
    expect(retried.new_job_id ?? retried.results?.[0]?.new_job_id).toBeGreaterThan(dead);
    const queued = (await db.pool.query(`select id from canon.jobs where entity_id = 'po-dead' and status = 'queued'`))
      .rows[0].id;
    const [r2] = await asMany('canon_operator', [['jobs', 'cancel', String(queued), '-m', 'not now', '--json']]);
    expect(r2.exitCode, r2.stderr).toBe(0);
    // the seed guide's statement through the compat view, recorded with the operator as actor
    const c = new pg.Client({ connectionString: users.canon_operator.url });
    await c.connect();
    try {
      await c.query(`UPDATE feature_flags SET enabled = true WHERE flag_name = 'OP_FLAG'`);
      await expect(c.query(`update canon.jobs set attempts = 0 where id = $1`, [queued])).rejects.toMatchObject({
        code: '42501',
      });
      await expect(
        c.query(
          `insert into canon.jobs (lane, type, entity_id, max_attempts, correlation_id) values ('execution', 'protect', 'po-x', 1, 'c')`,
        ),
      ).rejects.toMatchObject({ code: '42501' });
    } finally {
      await c.end();
    }
    const last = (
      await db.pool.query(
        `select actor, source from canon.flag_changes where flag_name = 'OP_FLAG' order by id desc limit 1`,
      )
    ).rows[0];
    expect(last).toEqual({ actor: users.canon_operator.name, source: 'sql' });

    const [ow, ot] = await asMany('canon_operator', [
      ['work', '--once'],
      ['tick', '--max-jobs', '0'],
    ]);
    expect(refused(ow, 'operator work')).toMatch(/permission denied/);
    expect(refused(ot, 'operator tick')).toMatch(/permission denied/);
  });

  it('canon_reader: health, alerts, watch, dead-jobs, trace, status, audit, export, backup and flags list work; every write is refused', async () => {
    const reads = [
      ['health', '--json'],
      ['dead-jobs', '--json'],
      ['trace', 'pw-0', '--json'],
      ['diagnose', 'pw-0', '--json'],
      ['status', 'pw-0', '--json'],
      ['status', 'verify', '--json'],
      ['audit', 'verify', '--json'],
      ['audit', 'attempts', '--json'],
      ['export', '--hash'],
      ['flags', 'list', '--json'],
      ['breakers', 'list', '--json'],
      ['events', 'list', 'pw-0', '--json'],
      ['migrate', 'status', '--json'],
      ['backup', path.join(tsaDir, 'reader.backup.gz')],
      ['alerts', '--json'],
      ['watch', '--once', '--readonly'],
    ];
    const writes = [
      ['events', 'append', 'pr-1', 'document.created'],
      ['flags', 'enable', 'OP_FLAG'],
      ['jobs', 'pause', 'tsa'],
      ['gateway', 'mode', 'strict'],
      ['work', '--once'],
    ];
    const rs = await asMany('canon_reader', [...reads, ...writes]);
    // health and alerts answer 0-2 (monitoring-plugin OK/WARNING/CRITICAL); 3 would be UNKNOWN
    for (const [i, args] of reads.entries())
      expect(
        (rs[i].exitCode === 0 || (['health', 'alerts'].includes(args[0]) && rs[i].exitCode < 3)) &&
          !/permission denied/.test(rs[i].stdout + rs[i].stderr),
        `${args.join(' ')} → ${rs[i].exitCode}: ${rs[i].stdout.slice(0, 200)} ${rs[i].stderr}`,
      ).toBe(true);
    for (const [i, args] of writes.entries())
      expect(refused(rs[reads.length + i], args.join(' '))).toMatch(/permission denied/);
  });

  it('a user in no canon role reaches nothing', async () => {
    // health speaks the monitoring-plugin convention: one status line on stdout, UNKNOWN (3)
    const h = await as('none', ['health']);
    expect(h.exitCode).toBe(3);
    expect(h.stdout.trim()).toMatch(/^CANON UNKNOWN - permission denied for schema canon$/);
    expect(hasStackTrace(h.stdout + h.stderr)).toBe(false);
    expect(refused(await as('none', ['events', 'append', 'pn-1', 'document.created']), 'none append')).toMatch(
      /permission denied|migrat/,
    );
  });
});

describe('the owner', () => {
  it('can bypass the refusal, and `canon audit verify` (run by a reader) names the entity it edited', async () => {
    const before = await canon(['audit', 'verify', '--json'], { url: users.canon_reader.url });
    expect(before.exitCode, before.stderr).toBe(0);
    const c = await db.pool.connect();
    try {
      await c.query('set session_replication_role = replica');
      await c.query(
        `update canon.events set payload = jsonb_set(payload, '{content}', '"edited"') where entity_id = 'pw-1' and seq = 1`,
      );
      await c.query('set session_replication_role = origin');
    } finally {
      c.release();
    }
    const after = await canon(['audit', 'verify', '--json'], { url: users.canon_reader.url });
    expect(after.exitCode).not.toBe(0);
    expect(after.stdout + after.stderr).toContain('pw-1');
    const inv = await checkInvariants(db.pool, ['pw-1']);
    expect(Object.keys(inv.violations)).toContain('audit_chain');
  });
});

describe('canon contracts check', () => {
  it('passes on the migrated database and fails, naming it, for a SECURITY DEFINER function that is unpinned or open to PUBLIC', async () => {
    const ok = await canon(['contracts', 'check', '--json'], { url: db.url });
    expect(ok.exitCode, ok.stdout + ok.stderr).toBe(0);
    const names = JSON.parse(ok.stdout).contracts.map((c: { name: string }) => c.name);
    expect(names).toEqual(
      expect.arrayContaining(['security_definer_search_path_pinned', 'security_definer_not_executable_by_public']),
    );

    await db.pool.query(`create function canon.t_unpinned() returns int language sql security definer as 'select 1'`);
    await db.pool.query(
      `create function canon.t_public_path() returns int language sql security definer set search_path = public, pg_temp as 'select 1'`,
    );
    await db.pool.query(`revoke execute on function canon.t_public_path() from public`);
    try {
      const bad = await canon(['contracts', 'check', '--json'], { url: db.url });
      expect(bad.exitCode).toBe(1);
      const byName = Object.fromEntries(
        JSON.parse(bad.stdout).contracts.map((c: { name: string; ok: boolean; detail: string }) => [c.name, c]),
      );
      expect(byName.security_definer_search_path_pinned.ok).toBe(false);
      expect(byName.security_definer_search_path_pinned.detail).toMatch(/t_unpinned\(\) has no search_path/);
      expect(byName.security_definer_search_path_pinned.detail).toMatch(
        /t_public_path\(\) has search_path public, pg_temp/,
      );
      expect(byName.security_definer_not_executable_by_public.ok).toBe(false);
      expect(byName.security_definer_not_executable_by_public.detail).toMatch(/t_unpinned/);
      expect(byName.security_definer_not_executable_by_public.detail).not.toMatch(/t_public_path/);
    } finally {
      await db.pool.query(`drop function canon.t_unpinned(); drop function canon.t_public_path()`);
    }
  });
});
