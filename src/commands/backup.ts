// `canon backup <file>`: a consistent logical backup of everything canon owns.
import { EXIT } from '../errors.js';
import { phaseProgress } from '../progress.js';
import { backup } from '../proof/backup.js';
import { checkWritableTarget } from '../proof/files.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  program
    .command('backup')
    .description('write a consistent logical backup of everything canon owns (no pg_dump needed)')
    .argument('<file>', 'the backup file to write (gzip-compressed JSON lines)')
    .addHelpText(
      'after',
      examples('canon backup canon-2026-01-18.backup', 'canon backup /var/backups/canon.backup --json') +
        "\n\nEvery table and sequence of schema canon, read in one REPEATABLE READ snapshot, with the ledger's" +
        '\nexport digest from the same snapshot (restore checks it). Progress goes to stderr.' +
        '\nExit 0 written, 2 bad arguments, 3 database unavailable.',
    )
    .action(
      run(async (ctx, file: string) => {
        const target = checkWritableTarget(file, 'backup');
        const db = await ctx.db({ unlimitedStatements: true });
        const p = phaseProgress(ctx.stderr, 'backup');
        const s = await backup(db.pool, target, p.progress);
        p.finish();
        const rows = s.header.tables.reduce((n, t) => n + t.rows, 0);
        const data = {
          file: s.file,
          bytes: s.bytes,
          tables: s.header.tables.length,
          rows,
          ledger: s.header.ledger,
          migrations: s.header.migrations.length,
        };
        ctx.print(
          data,
          (d) =>
            `backup written: ${d.file} (${d.bytes} bytes, ${d.rows} rows in ${d.tables} tables)\nledger: ${d.ledger.events} events in ${d.ledger.entities} entities, digest ${d.ledger.digest}`,
        );
        return EXIT.OK;
      }),
    );
};
