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
        "\n\nEvery table and sequence of schema canon as of one moment, with the ledger's export digest (restore" +
        '\nchecks it). The ledger is read up to a safe cut in short transactions, before and after one' +
        '\nREPEATABLE READ snapshot that reads the other tables: no snapshot is held while the ledger is read.' +
        '\nProgress goes to stderr. Exit 0 written, 1 the ledger read twice differed (nothing written),' +
        '\n2 bad arguments, 3 database unavailable (or a writer held canon.events for 60 s).',
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
