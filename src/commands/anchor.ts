// `canon anchor verify <entity_id>`: checks a document's hash, timestamp signature and
// inclusion proof offline, from its events alone.
import { checkEntityId } from '../args.js';
import { CanonError, EXIT } from '../errors.js';
import { history } from '../ledger.js';
import { verifyEntity } from '../../pipelines/example/verify.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  const a = program.command('anchor').description("the example pipeline's proofs").addHelpText('after', examples('canon anchor verify doc-1'));
  a.command('verify')
    .description('verify a document: content hash, timestamp signature and Merkle inclusion proof')
    .argument('<entity_id>')
    .addHelpText('after', examples('canon anchor verify doc-1', 'canon anchor verify doc-1 --json') + '\n\nExit 0 when every check passes, 1 when one fails, 2 for an unknown entity.')
    .action(
      run(async (ctx, entityId: string) => {
        checkEntityId(entityId);
        const db = await ctx.db();
        const events = await history(db.pool, entityId);
        if (events.length === 0) throw new CanonError(`entity ${entityId} has no events`, EXIT.USAGE);
        const checks = verifyEntity(events);
        const ok = checks.every((c) => c.ok);
        ctx.print({ entity_id: entityId, ok, checks }, (d) => d.checks.map((c) => `${c.ok ? ctx.c.green('[PASS]') : ctx.c.red('[FAIL]')} ${c.name}: ${c.detail}`).join('\n'));
        return ok ? EXIT.OK : EXIT.FAILURE;
      }),
    );
};
