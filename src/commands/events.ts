// `canon events append`: the client's way into the ledger (and `events list` to read one entity).
import { Option } from 'commander';
import { actorDefault, checkEntityId, checkKind, intArg, parsePayload } from '../args.js';
import { CanonError, EXIT } from '../errors.js';
import { appendEvent, history } from '../ledger.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  const ev = program
    .command('events')
    .description('append to and read the ledger')
    .addHelpText(
      'after',
      examples(`canon events append doc-1 document.created --payload '{"content":"hello"}'`, 'canon events list doc-1'),
    );

  ev.command('append')
    .description('append one event to an entity (creates the entity on its first event)')
    .argument('<entity_id>', 'the entity (a document id, for example)')
    .argument('<kind>', 'the event kind, for example document.created')
    .option('--payload <json|@file>', 'a JSON object, inline or @path/to/file.json', undefined)
    .option(
      '--expected-seq <n>',
      'refuse unless the entity is at this seq (optimistic concurrency; 0 for a new entity)',
      intArg('--expected-seq', 0, 2_000_000_000),
    )
    .option('--correlation-id <id>', 'correlation id (default: the entity id)')
    .option('--actor <name>', 'who appends (default: the OS user)')
    .addOption(
      new Option('--causation-id <position>', 'position of the event that caused this one').argParser(
        intArg('--causation-id', 1, Number.MAX_SAFE_INTEGER),
      ),
    )
    .addHelpText(
      'after',
      `${examples(
        `canon events append doc-1 document.created --payload '{"content":"hello"}'`,
        'canon events append doc-1 document.note --payload @note.json --expected-seq 3',
      )}\n\nExit 4 when --expected-seq is stale: read the entity again and retry.`,
    )
    .action(
      run(
        async (
          ctx,
          entityId: string,
          kind: string,
          opts: {
            payload?: string;
            expectedSeq?: number;
            correlationId?: string;
            actor?: string;
            causationId?: number;
          },
        ) => {
          checkEntityId(entityId);
          checkKind(kind);
          const payload = parsePayload(opts.payload);
          if (opts.correlationId !== undefined) checkEntityId(opts.correlationId);
          const db = await ctx.db();
          const e = await appendEvent(db.pool, {
            entityId,
            kind,
            payload,
            expectedSeq: opts.expectedSeq,
            correlationId: opts.correlationId,
            causationId: opts.causationId,
            actor: opts.actor ?? actorDefault(),
          });
          ctx.print(
            e,
            (d) =>
              `appended ${d.kind} to ${d.entity_id} at seq ${d.seq} (position ${d.position}, hash ${d.hash?.slice(0, 16)}…)`,
          );
        },
      ),
    );

  ev.command('list')
    .description("an entity's events in order")
    .argument('<entity_id>')
    .addHelpText('after', examples('canon events list doc-1', 'canon events list doc-1 --json'))
    .action(
      run(async (ctx, entityId: string) => {
        checkEntityId(entityId);
        const db = await ctx.db();
        const rows = await history(db.pool, entityId);
        if (rows.length === 0) throw new CanonError(`entity ${entityId} has no events (check the id)`, EXIT.FAILURE);
        ctx.print(rows, (rs) =>
          rs
            .map(
              (r) =>
                `${String(r.seq).padStart(4)}  ${new Date(r.created_at).toISOString()}  ${r.kind.padEnd(28)} ${r.actor}${r.trace_id ? `  trace ${r.trace_id}` : ''}`,
            )
            .join('\n'),
        );
      }),
    );
};
