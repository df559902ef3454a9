// `canon restore <file>`: a backup into an empty database, verified before it is kept.

import { describeUrl } from '../db/url.js';
import { EXIT } from '../errors.js';
import { phaseProgress } from '../progress.js';
import { restore } from '../proof/restore.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  program
    .command('restore')
    .description('restore a backup into an empty database, then prove it: export digest and audit')
    .argument('<file>', 'a file written by canon backup')
    .addHelpText(
      'after',
      examples(
        'DATABASE_URL=postgres://canon@db2/canon canon restore canon-2026-01-18.backup',
        'canon restore canon.backup --json',
      ) +
        "\n\nApplies canon's migrations first (they must be exactly the backup's), loads every row in one" +
        "\ntransaction with canon's triggers disabled (hashes, seqs and positions are loaded, not recomputed;" +
        "\nneeds ownership of canon's tables), then commits only if the ledger's export digest equals the" +
        "\nbackup's and every hash chain verifies. Progress goes to stderr." +
        '\nExit 0 restored and verified, 1 verification failed (nothing kept), 2 bad file or a database that is' +
        "\nnot empty or not at the backup's migrations, 3 database unavailable.",
    )
    .action(
      run(async (ctx, file: string) => {
        const db = await ctx.db({ migrated: false, unlimitedStatements: true });
        const p = phaseProgress(ctx.stderr, 'restore');
        const s = await restore(db.pool, file, p.progress);
        p.finish();
        const total = Object.values(s.rows).reduce((a, b) => a + b, 0);
        ctx.print(
          { ...s, database: describeUrl(db.target.url) },
          (d) =>
            `restored ${total} rows into ${d.database}\nledger: ${d.ledger.events} events in ${d.ledger.entities} entities, digest ${d.ledger.digest} (equals the backup's)\naudit: every hash chain intact`,
        );
        return EXIT.OK;
      }),
    );
};
