// `canon db start | stop | status`: the embedded Postgres, or the server DATABASE_URL names.

import { intArg } from '../args.js';
import { embeddedPaths, embeddedStatus, startEmbedded, stopEmbedded } from '../db/embedded.js';
import { describeUrl } from '../db/url.js';
import { EXIT, usageError } from '../errors.js';
import { isCurrent, schemaStatus } from '../migrate.js';
import { DB_SQL } from '../sql/db.js';
import { examples, type Register } from './types.js';

function fmtBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  for (; n >= 1024 && i < u.length - 1; i++) n /= 1024;
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

export const register: Register = (program, run) => {
  const db = program
    .command('db')
    .description('start, stop or inspect the database')
    .addHelpText('after', examples('canon db start', 'canon db status --json', 'canon db stop'));

  db.command('start')
    .description('start the embedded Postgres (data under .canon/; no effect with DATABASE_URL)')
    .option(
      '--port <port>',
      'port for a new embedded server (default 54329, or a free one)',
      intArg('--port', 1024, 65535),
    )
    .addHelpText('after', examples('canon db start', 'CANON_HOME=/var/lib/canon canon db start --port 55432'))
    .action(
      run(async (ctx, opts: { port?: number }) => {
        if (process.env.DATABASE_URL)
          throw usageError(
            'DATABASE_URL is set: canon uses that server and does not start the embedded one (unset it to use the embedded Postgres)',
          );
        const cfg = await startEmbedded({ port: opts.port });
        const p = embeddedPaths();
        ctx.print(
          { started: cfg.started, port: cfg.port, data_dir: p.data, log: p.log },
          (d) =>
            `${d.started ? 'started' : 'already running'}: embedded Postgres on 127.0.0.1:${d.port}, data in ${d.data_dir}\nnext: canon migrate`,
        );
      }),
    );

  db.command('stop')
    .description('stop the embedded Postgres (its data stays)')
    .addHelpText('after', examples('canon db stop'))
    .action(
      run(async (ctx) => {
        if (process.env.DATABASE_URL)
          throw usageError('DATABASE_URL is set: canon does not manage that server (stop it with its own tools)');
        const stopped = await stopEmbedded();
        ctx.print({ stopped }, (d) =>
          d.stopped ? 'stopped the embedded Postgres (data kept)' : 'the embedded Postgres was not running',
        );
      }),
    );

  db.command('status')
    .description("server version, where it is, its size, and whether canon's migrations are current")
    .addHelpText('after', examples('canon db status', 'canon db status --json | jq .migrations_current'))
    .action(
      run(async (ctx) => {
        const embedded = !process.env.DATABASE_URL;
        if (embedded) {
          const st = await embeddedStatus();
          if (!st.running) {
            ctx.print(
              { kind: 'embedded', running: false, initialised: st.initialised, data_dir: st.dataDir },
              (d) =>
                `embedded Postgres: ${d.initialised ? 'stopped' : 'not created yet'} (data dir ${d.data_dir})\nnext: canon db start`,
            );
            return EXIT.OK;
          }
        }
        const handle = await ctx.db({ migrated: false });
        const c = await handle.pool.connect();
        try {
          const info = (await c.query(DB_SQL.serverInfo)).rows[0];
          const st = await schemaStatus(c);
          const states = [...st.migrations, ...st.definitions];
          const current = isCurrent(st);
          const data = {
            kind: embedded ? 'embedded' : 'external',
            running: true,
            where: describeUrl(handle.target.url),
            data_dir: embedded ? embeddedPaths().data : undefined,
            server_version: info.version,
            size_bytes: Number(info.size_bytes),
            migrations_current: current,
            migrations: {
              applied: states.filter((s) => s.state === 'applied').length,
              pending: states.filter((s) => s.state === 'pending' || s.state === 'outdated').length,
              changed: states.filter((s) => s.state === 'changed').map((s) => s.file),
            },
          };
          ctx.print(data, (d) =>
            [
              `database:   ${d.where} (${d.kind}${d.data_dir ? `, data in ${d.data_dir}` : ''})`,
              `server:     PostgreSQL ${d.server_version}`,
              `size:       ${fmtBytes(d.size_bytes)}`,
              `migrations: ${d.migrations_current ? ctx.c.green('current') : ctx.c.yellow(`${d.migrations.pending} pending${d.migrations.changed.length ? `, ${d.migrations.changed.length} changed` : ''} (run canon migrate)`)} (${d.migrations.applied} applied)`,
            ].join('\n'),
          );
          return EXIT.OK;
        } finally {
          c.release();
        }
      }),
    );
};
