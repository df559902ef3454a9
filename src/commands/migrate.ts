// `canon migrate` (up) and `canon migrate status`.
import { describeUrl } from '../db/url.js';
import { EXIT } from '../errors.js';
import { assertUnchanged, isCurrent, migrateDatabase, schemaStatus } from '../migrate.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  const m = program
    .command('migrate')
    .description(
      'apply pending numbered migrations, then every changed definitions file (safe to run twice or concurrently)',
    )
    .addHelpText(
      'after',
      examples('canon migrate', 'canon migrate status', 'DATABASE_URL=postgres://canon@db/app canon migrate --json') +
        '\n\nNumbered migrations (migrations/NNNN_name.sql) hold tables and indexes and apply once, in order.' +
        '\nDefinitions files (migrations/repeatable/name.sql) hold functions, triggers and views and apply' +
        '\nagain whenever their text changes. Triggers an operator disabled stay disabled.' +
        '\nExit codes: 0 applied or already current, 1 a migration failed or the history is inconsistent,' +
        '\n3 database unavailable or holding a pre-release canon schema.',
    )
    .action(
      run(async (ctx) => {
        const db = await ctx.db({ migrated: false });
        const res = await migrateDatabase(db, {
          migration: (f) => !ctx.json && ctx.info(`applying ${f.file} (${f.cls})`),
          definitions: (d, was) => !ctx.json && ctx.info(`${was === 'pending' ? 'defining' : 'redefining'} ${d.file}`),
        });
        const data = {
          database: describeUrl(db.target.url),
          applied: res.applied.map((s) => ({ id: s.id, file: s.file, class: s.cls })),
          definitions: res.definitions.map((d) => ({ file: d.file, class: d.cls })),
          already_current: res.alreadyCurrent,
        };
        ctx.print(data, (d) =>
          d.already_current
            ? `migrations are current in ${d.database}`
            : `applied ${d.applied.length} migration(s) and ${d.definitions.length} definitions file(s) to ${d.database}`,
        );
      }),
    );

  m.command('status')
    .description('list numbered migrations and definitions files with their state and when they were applied')
    .addHelpText(
      'after',
      examples('canon migrate status', 'canon migrate status --json') +
        '\n\nStates: applied; pending (not applied yet); changed (a numbered file edited after it was applied:' +
        '\nrefused); outdated (a definitions file changed since it was applied: `canon migrate` applies it);' +
        '\nmissing (applied by a newer canon). Exit codes: 0 current, 1 anything else.',
    )
    .action(
      run(async (ctx) => {
        const db = await ctx.db({ migrated: false });
        const c = await db.pool.connect();
        try {
          const st = await schemaStatus(c);
          const rows = [
            ...st.migrations.map((s) => ({
              kind: 'numbered',
              file: s.file,
              class: s.cls,
              state: s.state,
              checksum: s.checksum,
              applied_at: s.appliedAt ?? null,
            })),
            ...st.definitions.map((s) => ({
              kind: 'definitions',
              file: s.file,
              class: s.cls,
              state: s.state,
              checksum: s.checksum,
              applied_at: s.appliedAt ?? null,
            })),
          ];
          ctx.print(rows, (list) =>
            list
              .map((r) => {
                const colour =
                  r.state === 'applied'
                    ? ctx.c.green
                    : r.state === 'pending' || r.state === 'outdated'
                      ? ctx.c.yellow
                      : ctx.c.red;
                const at = r.applied_at ? new Date(r.applied_at).toISOString() : '';
                return `${r.file.padEnd(36)} ${r.class.padEnd(7)} ${colour(r.state.padEnd(8))} ${at}`;
              })
              .join('\n'),
          );
          try {
            assertUnchanged(st.migrations, st.definitions);
          } catch {
            return EXIT.FAILURE;
          }
          return isCurrent(st) ? EXIT.OK : EXIT.FAILURE;
        } finally {
          c.release();
        }
      }),
    );
};
