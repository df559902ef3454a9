// `canon archive <month>`: a past month of the ledger exported with its digest and the hash-chain
// heads at the cut, detached and kept as a file; `canon archive restore <file>` re-attaches it
// after checking the digest; `canon archive list` shows what is archived (decision 0034).
import path from 'node:path';
import type { Ctx } from '../context.js';
import { EXIT } from '../errors.js';
import { archiveMonth, monthText, parseMonth, restoreArchive } from '../proof/archive.js';
import { checkWritableTarget } from '../proof/files.js';
import { ARCHIVE_SQL } from '../sql/archive.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  const archive = program
    .command('archive')
    .description('archive a past month of the ledger to a file (digest and chain heads kept), or restore one')
    .argument('[month]', 'the month to archive, e.g. 2026-11 (UTC)')
    .option(
      '--out <file>',
      'the archive file (default: canon-events-<month>.jsonl here); <file>.manifest.json beside it',
    )
    .addHelpText(
      'after',
      examples(
        'canon archive 2026-11',
        'canon archive 2026-11 --out /backup/canon-events-2026-11.jsonl',
        'canon archive list',
        'canon archive restore /backup/canon-events-2026-11.jsonl',
      ) +
        "\n\nThe file holds the month's events as canon export lines; its SHA-256 and each entity's head at the cut" +
        "\nare recorded in the database, then the month's partition is detached and dropped. canon audit verify" +
        '\nchecks the kept events from those heads. A month whose entities still have work queued or running is' +
        '\nrefused. Exit 0 archived, 1 refused (work pending, a chain that does not verify), 2 bad month or file.',
    )
    .action(
      run(async (ctx: Ctx, raw: string | undefined, opts: { out?: string }) => {
        if (raw === undefined) {
          archive.outputHelp();
          return EXIT.USAGE;
        }
        const month = parseMonth(raw);
        const file = checkWritableTarget(opts.out ?? `canon-events-${monthText(month)}.jsonl`, '--out');
        const db = await ctx.db();
        const s = await archiveMonth(db.pool, month, file);
        ctx.print(
          s,
          (d) =>
            `${d.month} archived: ${d.events} events of ${d.entities} entities → ${path.relative(process.cwd(), d.file) || d.file}\nsha256 ${d.sha256} (heads ${d.heads_sha256}); manifest ${d.manifest}`,
        );
        return EXIT.OK;
      }),
    );

  archive
    .command('restore')
    .description('re-attach an archived month from its file, after checking its digest and heads')
    .argument('<file>', 'a file written by canon archive')
    .addHelpText(
      'after',
      `${examples('canon archive restore canon-events-2026-11.jsonl')}\n\nExit 0 restored and verified, 1 the digest or the chains do not match (nothing changed), 2 unreadable file.`,
    )
    .action(
      run(async (ctx: Ctx, file: string) => {
        const db = await ctx.db();
        const s = await restoreArchive(db.pool, file);
        ctx.print(
          s,
          (d) =>
            `${d.month} restored from ${d.file}: ${d.events} events of ${d.entities} entities, digest and chains verified`,
        );
        return EXIT.OK;
      }),
    );

  archive
    .command('list')
    .description('the archived months: file, digest, counts, when archived or restored')
    .addHelpText('after', examples('canon archive list', 'canon archive list --json'))
    .action(
      run(async (ctx: Ctx) => {
        const db = await ctx.db();
        const rows = (await db.pool.query(ARCHIVE_SQL.list)).rows;
        ctx.print(
          { archives: rows },
          (d) =>
            d.archives
              .map(
                (a) =>
                  `${String(a.month).slice(0, 7)}  ${a.restored_at ? 'restored' : 'archived'}  ${a.events} events, ${a.entities} entities  ${a.file_name}  sha256 ${a.sha256}`,
              )
              .join('\n') || 'no month is archived',
        );
        return EXIT.OK;
      }),
    );
};
