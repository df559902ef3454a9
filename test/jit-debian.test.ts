// canon on Debian's PostgreSQL 15 with the package's default settings, where `jit = on`: no
// statement on canon's paths may be JIT-compiled. JIT decides per plan (cost above
// jit_above_cost, 100000) and compiles again on every execution, cached plans included, so one
// such statement in the claim costs tens of milliseconds per call and makes `canon demo` several
// times slower than with JIT off. The embedded Postgres of the other tests has no JIT provider
// and cannot show it. The server comes from test/support/debian-postgres.ts (`.ci/run` installs
// postgresql-15); pg_stat_statements (track = all) counts JIT functions per statement, those
// run inside canon's SQL functions included.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canon } from './helpers.js';
import { type DebianPostgres, startDebianPostgres } from './support/debian-postgres.js';

pg.types.setTypeParser(20, (v) => Number(v));

const DOCUMENTS = 30;
const DB = 'canon_jit';

let server: DebianPostgres | undefined;
let admin: pg.Client | undefined;

beforeAll(async () => {
  server = await startDebianPostgres({ label: 'jit' });
  admin = new pg.Client({ connectionString: server.url('postgres') });
  await admin.connect();
  await admin.query('create extension if not exists pg_stat_statements');
}, 120_000);

afterAll(async () => {
  await admin?.end().catch(() => {});
  await server?.stop();
});

interface JitRow {
  queryid: string;
  toplevel: boolean;
  calls: number;
  jit_functions: number;
  jit_inlining_count: number;
  jit_optimization_count: number;
  jit_ms: number;
  mean_exec_ms: number;
  query: string;
}

describe('canon on Debian PostgreSQL 15 with its default settings (jit = on)', () => {
  it('the server JIT-compiles statements past jit_above_cost and pg_stat_statements sees it', async () => {
    const a = admin as pg.Client;
    const s = (
      await a.query(
        `select current_setting('jit') as jit, current_setting('jit_above_cost')::float8 as above, pg_jit_available() as available,
                current_setting('server_version') as version`,
      )
    ).rows[0];
    expect(s, `JIT must be on and available on this server (${JSON.stringify(s)})`).toMatchObject({
      jit: 'on',
      available: true,
      above: 100000,
    });
    // a control: a statement forced past the threshold shows up with JIT functions, so a zero
    // below means no JIT, not a blind counter
    await a.query('set jit_above_cost = 0');
    await a.query('select sum(g * 2) as jit_control from generate_series(1, 1000) g');
    await a.query('reset jit_above_cost');
    const control = await a.query(
      `select coalesce(sum(jit_functions), 0)::int as n from pg_stat_statements
        where dbid = (select oid from pg_database where datname = current_database()) and query like '%jit_control%'`,
    );
    expect(control.rows[0].n).toBeGreaterThan(0);
  });

  it(`migrate and \`canon demo --documents ${DOCUMENTS}\` JIT-compile no statement`, async () => {
    const a = admin as pg.Client;
    const srv = server as DebianPostgres;
    await a.query(`create database ${DB}`);
    await a.query('select pg_stat_statements_reset()');
    const url = srv.url(DB);

    const m = await canon(['migrate'], { url });
    expect(m.exitCode, `canon migrate failed:\n${m.stderr}`).toBe(0);
    const d = await canon(['demo', '--documents', String(DOCUMENTS), '--json'], { url, timeout: 60_000 });
    expect(d.exitCode, `canon demo failed:\n${d.stderr}\n${d.stdout}\nserver log:\n${srv.logTail()}`).toBe(0);
    const summary = JSON.parse(d.stdout);
    expect(summary).toMatchObject({ documents: DOCUMENTS, anchored: DOCUMENTS, stalled: false });

    const rows = (
      await a.query<JitRow>(
        `select queryid::text, toplevel, calls, jit_functions, jit_inlining_count, jit_optimization_count,
                round((jit_generation_time + jit_inlining_time + jit_optimization_time + jit_emission_time)::numeric, 1)::float8 as jit_ms,
                round(mean_exec_time::numeric, 2)::float8 as mean_exec_ms, query
           from pg_stat_statements
          where dbid = (select oid from pg_database where datname = $1) and jit_functions > 0
          order by jit_ms desc`,
        [DB],
      )
    ).rows;
    const total = rows.reduce((n, r) => n + r.jit_functions, 0);
    const jitMs = rows.reduce((n, r) => n + r.jit_ms, 0);
    const report = rows
      .map(
        (r) =>
          `- ${r.calls} calls, ${r.jit_functions} JIT functions (inlined ${r.jit_inlining_count}×, optimized ${r.jit_optimization_count}×), ` +
          `${r.jit_ms} ms of JIT, mean execution ${r.mean_exec_ms} ms, ${r.toplevel ? 'top level' : 'inside a function'}, queryid ${r.queryid}:\n` +
          `    ${r.query.replace(/\s+/g, ' ').trim()}`,
      )
      .join('\n');
    const message =
      `${rows.length} statement(s) JIT-compiled during migrate + demo (${total} functions, ${jitMs.toFixed(0)} ms of JIT; ` +
      `demo: ${summary.seconds}s for ${DOCUMENTS} documents). Their plans cost more than jit_above_cost (100000); ` +
      `EXPLAIN them with the settings of the function they run in:\n${report}`;
    if (rows.length > 0) console.error(message);
    else
      console.log(
        `jit-debian: no JIT; demo ${summary.seconds}s for ${DOCUMENTS} documents, p50 ${summary.latency_ms.p50} ms`,
      );
    expect(total, message).toBe(0);
  }, 90_000);
});
