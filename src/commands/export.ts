// `canon export`: the ledger as canonical JSON lines in position order, with one SHA-256 digest
// that is equal for equal ledgers on any machine and after a backup is restored.
import { EXIT } from '../errors.js';
import { Progress } from '../progress.js';
import { exportLedgerCut } from '../proof/export.js';
import { atomicFile, checkWritableTarget, writeChunk } from '../proof/files.js';
import { readsOnly } from './shared/options.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  readsOnly(program.command('export'))
    .description('export the ledger deterministically (canonical JSON lines) with its SHA-256 digest')
    .option('--hash', 'print the digest (without --out, only the digest: no lines)')
    .option('--out <file>', 'write the lines to this file (written to a temporary name, renamed when complete)')
    .addHelpText(
      'after',
      examples(
        'canon export --hash',
        'canon export --hash --out ledger.jsonl',
        'canon export > ledger.jsonl',
        'sha256sum ledger.jsonl   # equals the digest',
      ) +
        '\n\nOne line per event in global position order: position, entity_id, seq, kind, payload, correlation_id,' +
        '\ncausation_id, trace_id, actor, created_at (UTC, microseconds), prev_hash, hash. The digest is the' +
        '\nSHA-256 of the lines, each ending in "\\n". The ledger is read up to a safe cut (the newest position' +
        '\nbelow which every event has committed: through_position) in short transactions, so no snapshot is' +
        '\nheld for the whole export; events appended meanwhile are left for the next one.' +
        '\nExit 0 ok, 2 bad arguments, 3 database unavailable (or a writer held canon.events for 60 s).',
    )
    .action(
      run(async (ctx, opts: { hash?: boolean; out?: string }) => {
        const target = opts.out ? checkWritableTarget(opts.out, '--out') : undefined;
        const db = await ctx.readDb({ unlimitedStatements: true });
        const toStdout = !target && !opts.hash;
        const file = target ? atomicFile(target) : undefined;
        let bar: Progress | undefined;
        try {
          const summary = await exportLedgerCut(db.pool, {
            onLine: file ? (l) => file.write(`${l}\n`) : toStdout ? (l) => writeChunk(ctx.stdout, `${l}\n`) : undefined,
            onProgress: (done, total) => {
              if (total < 50_000) return;
              bar ??= new Progress('export', total, ctx.stderr, 'events');
              bar.update(done);
            },
          });
          bar?.finish();
          await file?.commit();
          const data = {
            digest: summary.digest,
            algorithm: 'sha256',
            events: summary.events,
            entities: summary.entities,
            through_position: summary.through_position,
            out: target ?? null,
          };
          if (toStdout) ctx.info(`sha256 ${data.digest} (${data.events} events, ${data.entities} entities)`);
          else
            ctx.print(data, (d) =>
              opts.hash && !target
                ? d.digest
                : `${d.digest}  ${d.events} events, ${d.entities} entities${d.out ? ` → ${d.out}` : ''}`,
            );
          return EXIT.OK;
        } catch (e) {
          file?.abort();
          throw e;
        }
      }),
    );
};
