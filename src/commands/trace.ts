// `canon trace <entity_id | correlation_id>`: the whole chain of one entity as a tree.
import { checkEntityId } from '../args.js';
import type { Ctx } from '../context.js';
import { buildTree, loadChain, renderTrace } from '../observe/trace.js';
import { archivedParts } from '../proof/archive.js';
import { readsOnly } from './shared/options.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  readsOnly(program.command('trace'))
    .description('event → decision job → run → job.<type>.required → execution job → runs → result event, as a tree')
    .argument('<id>', 'an entity id, or a correlation id')
    .addHelpText(
      'after',
      examples(
        'canon trace doc-42',
        "canon trace doc-42 --json | jq '.tree[0]'",
        "canon trace $(canon dead-jobs --json | jq -r '.jobs[0].entity_id')",
      ) +
        '\n\nExit 0 when the chain is printed, 2 when the id is neither an entity nor a correlation id, 3 when the database is unavailable.',
    )
    .action(
      run(async (ctx: Ctx, id: string) => {
        checkEntityId(id);
        const db = await ctx.readDb();
        const t = buildTree(await loadChain(db.pool, id));
        // the part of the chain in archived months (canon archive) is not in the tree: say where it is
        const archived = t.matched_by === 'entity' ? await archivedParts(db.pool, id) : [];
        ctx.print({ ...t, archived }, (d) =>
          [
            ...d.archived.map(
              (a) =>
                `${ctx.c.yellow('archived')} seq ${a.first_seq}–${a.last_seq} (${a.month}, ${a.file_name}): canon archive restore <file> brings them back`,
            ),
            renderTrace(d, ctx.c),
          ].join('\n'),
        );
      }),
    );
};
