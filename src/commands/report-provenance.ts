// `canon report:provenance <entity_id…>`: what the ledger attests about some entities, taken
// in one snapshot, checked in that same snapshot, and written as a provenance file.
import fs from 'node:fs';
import { checkEntityId } from '../args.js';
import { CanonError, EXIT, usageError } from '../errors.js';
import { loadPipeline } from '../pipeline/load.js';
import { atomicFile, checkWritableTarget } from '../proof/files.js';
import { checkProvenance, renderResults, takeProvenance } from '../proof/provenance.js';
import { inSnapshot } from '../proof/snapshot.js';
import { pipelineOption, readsOnly } from './shared/options.js';
import { examples, type Register } from './types.js';

const MAX_ENTITIES = 10_000;

export const register: Register = (program, run) => {
  readsOnly(program.command('report:provenance'))
    .description(
      'write a provenance file: status, ledger head, runs, artifact hash, timestamp and anchor proof per entity',
    )
    .argument('<entity_id...>', 'the entities to attest')
    .option('-o, --out <file>', 'write the file here (default: stdout)')
    .addOption(pipelineOption())
    .addHelpText(
      'after',
      examples(
        'canon report:provenance doc-1 doc-2 -o prov.json',
        'canon report:provenance doc-1 > prov.json',
        'canon report:debug-provenance prov.json --verbose',
      ) +
        '\n\nEvery claim is read in one snapshot (verification_snapshot_ts) and checked in that same snapshot' +
        '\nbefore the file is written; a claim that does not verify (a tampered ledger) writes nothing.' +
        "\nThe proof claims are the pipeline module's (--pipeline; the example pipeline by default)." +
        '\nFormat: docs/PROVENANCE.md. Exit 0 written, 1 a claim does not verify, 2 bad or unknown entity.',
    )
    .action(
      run(async (ctx, ids: string[], opts: { out?: string; pipeline?: string }) => {
        if (ids.length > MAX_ENTITIES)
          throw usageError(`at most ${MAX_ENTITIES} entities per report, got ${ids.length}`);
        ids.forEach(checkEntityId);
        const target = opts.out ? checkWritableTarget(opts.out, '--out') : undefined;
        const { proofs } = (await loadPipeline(opts.pipeline)).pipeline;
        const db = await ctx.readDb();
        const { prov, results } = await inSnapshot(db.pool, async (c) => {
          const p = await takeProvenance(c, ids, proofs);
          return { prov: p, results: await checkProvenance(c, p, proofs) };
        });
        const bad = results.filter((r) => !r.ok);
        if (bad.length) {
          throw new CanonError(
            `not written: ${bad.length} claim(s) do not verify now, first: ${renderResults([bad[0]], false)} (run canon audit verify)`,
            EXIT.FAILURE,
          );
        }
        const text = `${JSON.stringify(prov, null, 2)}\n`;
        if (!target) {
          ctx.stdout.write(text);
          return EXIT.OK;
        }
        const f = atomicFile(target);
        await f.write(text);
        await f.commit();
        const data = {
          file: target,
          bytes: fs.statSync(target).size,
          verification_snapshot_ts: prov.verification_snapshot_ts,
          claims: results.length,
          entities: prov.claims_validated.length,
        };
        ctx.print(
          data,
          (d) =>
            `provenance written: ${d.file} (${d.entities} entities, ${d.claims} claims verified at ${d.verification_snapshot_ts})`,
        );
        return EXIT.OK;
      }),
    );
};
