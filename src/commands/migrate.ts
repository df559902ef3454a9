// `canon migrate` (up) and `canon migrate status`.
import { EXIT } from '../errors.js';
import { describeUrl } from '../db/url.js';
import { migrate, migrationStatus, assertUnchanged } from '../migrate.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  const m = program
    .command('migrate')
    .description('apply pending canon migrations (safe to run twice or concurrently)')
    .addHelpText('after', examples('canon migrate', 'canon migrate status', 'DATABASE_URL=postgres://canon@db/app canon migrate --json'))
    .action(
      run(async (ctx) => {
        const db = await ctx.db({ migrated: false });
        const c = await db.pool.connect();
        try {
          const res = await migrate(c, (f) => {
            if (!ctx.json) ctx.info(`applying ${f.file} (${f.cls})`);
          });
          ctx.print(
            { database: describeUrl(db.target.url), applied: res.applied.map((s) => ({ id: s.id, file: s.file, class: s.cls })), already_current: res.alreadyCurrent },
            (d) => (d.already_current ? `migrations are current in ${d.database}` : `applied ${d.applied.length} migration(s) to ${d.database}`),
          );
        } finally {
          c.release();
        }
      }),
    );

  m.command('status')
    .description('list migrations with class, checksum state and when they were applied')
    .addHelpText('after', examples('canon migrate status', 'canon migrate status --json'))
    .action(
      run(async (ctx) => {
        const db = await ctx.db({ migrated: false });
        const c = await db.pool.connect();
        try {
          const states = await migrationStatus(c);
          ctx.print(
            states.map((s) => ({ id: s.id, file: s.file, class: s.cls, breaking: s.breaking, state: s.state, checksum: s.checksum, applied_at: s.appliedAt ?? null })),
            (rows) =>
              rows
                .map((r) => {
                  const st = r.state === 'applied' ? ctx.c.green(r.state) : r.state === 'pending' ? ctx.c.yellow(r.state) : ctx.c.red(r.state);
                  return `${r.file.padEnd(36)} ${r.class.padEnd(7)} ${st.padEnd(8)} ${r.applied_at ? new Date(r.applied_at).toISOString() : ''}`;
                })
                .join('\n'),
          );
          try {
            assertUnchanged(states);
          } catch {
            return EXIT.FAILURE;
          }
          return states.some((s) => s.state === 'pending') ? EXIT.FAILURE : EXIT.OK;
        } finally {
          c.release();
        }
      }),
    );
};
