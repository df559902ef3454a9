// `canon anchor verify <entity_id>`: checks a document's proofs offline, from its events alone,
// with the checks its pipeline module declares (`proofs.verifyEntity`; for the example
// pipeline: content hash, timestamp signature and Merkle inclusion proof).
import { checkEntityId } from '../args.js';
import { CanonError, EXIT, usageError } from '../errors.js';
import { history } from '../ledger.js';
import { loadPipeline } from '../pipeline/load.js';
import { pipelineOption } from './shared/options.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  const a = program
    .command('anchor')
    .description("a pipeline's proofs (the example pipeline's by default)")
    .addHelpText('after', examples('canon anchor verify doc-1'));
  a.command('verify')
    .description('verify a document: content hash, timestamp signature and Merkle inclusion proof')
    .argument('<entity_id>')
    .addOption(pipelineOption())
    .addHelpText(
      'after',
      `${examples('canon anchor verify doc-1', 'canon anchor verify doc-1 --json', 'canon anchor verify inv-7 --pipeline ./my-pipeline.js')}\n\nExit 0 when every check passes, 1 when one fails, 2 for an unknown entity or a pipeline without proofs.`,
    )
    .action(
      run(async (ctx, entityId: string, opts: { pipeline?: string }) => {
        checkEntityId(entityId);
        const { pipeline } = await loadPipeline(opts.pipeline);
        if (!pipeline.proofs)
          throw usageError(`pipeline ${pipeline.name} declares no proofs to verify (its module has no \`proofs\`)`);
        const db = await ctx.db();
        const events = await history(db.pool, entityId);
        if (events.length === 0) throw new CanonError(`entity ${entityId} has no events`, EXIT.USAGE);
        const checks = pipeline.proofs.verifyEntity(events);
        const ok = checks.every((c) => c.ok);
        ctx.print({ entity_id: entityId, ok, checks }, (d) =>
          d.checks
            .map((c) => `${c.ok ? ctx.c.green('[PASS]') : ctx.c.red('[FAIL]')} ${c.name}: ${c.detail}`)
            .join('\n'),
        );
        return ok ? EXIT.OK : EXIT.FAILURE;
      }),
    );
};
