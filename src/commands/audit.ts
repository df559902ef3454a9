// `canon audit verify`: recompute the ledger's hash chains and report the first broken link of
// each entity; `canon audit attempts`: the register of refused edits and trigger bypasses.
import { actorDefault, checkEntityId, intArg } from '../args.js';
import { type AuditResult, acknowledgeTamper, type TamperAlert, tamperAlerts, verifyChains } from '../audit.js';
import { EXIT } from '../errors.js';
import { Progress } from '../progress.js';
import { inSnapshot } from '../proof/snapshot.js';
import { examples, type Register } from './types.js';

const PROBLEM: Record<string, string> = {
  seq_gap: 'seq out of order (a row was removed, moved or renumbered)',
  prev_hash_mismatch: 'prev_hash does not name the previous event',
  hash_mismatch: 'the row does not hash to its stored hash (a field was edited)',
  head_mismatch: 'the entity head does not name its last event',
};

export function auditHuman(r: AuditResult): string {
  if (r.ok) return `ledger verified: ${r.events} events in ${r.entities} entities, every hash chain intact`;
  const lines = [
    `ledger BROKEN: ${r.breaks.length} entit${r.breaks.length === 1 ? 'y has' : 'ies have'} a broken chain (${r.events} events, ${r.entities} entities checked)`,
  ];
  for (const b of r.breaks) {
    lines.push(
      `  ${b.entity_id} seq ${b.seq}${b.found_seq !== undefined ? ` (row has seq ${b.found_seq})` : ''}: ${PROBLEM[b.problem] ?? b.problem}`,
    );
    if (b.expected_hash || b.actual_hash)
      lines.push(`    expected ${b.expected_hash ?? '-'}`, `    actual   ${b.actual_hash ?? '-'}`);
  }
  return lines.join('\n');
}

function attemptsHuman(a: TamperAlert): string {
  const r = a.register;
  return [
    `refused edit attempts on the ledger: ${r.refused_total} (${a.refused_new} new)`,
    `edits with triggers bypassed:        ${r.bypass_total} (${a.bypass_new} new)`,
    r.last
      ? `last: ${r.last.operation} by ${r.last.role} at ${r.last.at}${r.last.bypassed ? ' with triggers bypassed' : ' (refused)'}; server log pid ${r.last.pid} has the statement`
      : 'last: none',
  ].join('\n');
}

export const register: Register = (program, run) => {
  const audit = program
    .command('audit')
    .description('prove the ledger is intact: hash chains and the register of edit attempts')
    .addHelpText('after', examples('canon audit verify', 'canon audit verify --entity doc-1', 'canon audit attempts'));

  audit
    .command('verify')
    .description('recompute every hash chain and report the first broken link of each entity')
    .option('--entity <id>', 'check one entity only')
    .option('--limit <n>', 'report at most this many broken entities', intArg('--limit', 1, 1_000_000), 1000)
    .addHelpText(
      'after',
      examples('canon audit verify', 'canon audit verify --entity doc-1 --json') +
        '\n\nCatches rows rewritten by anyone, including a superuser who bypassed the triggers' +
        '\n(session_replication_role = replica). Exit 0 intact, 1 a chain is broken, 2 bad arguments.',
    )
    .action(
      run(async (ctx, opts: { entity?: string; limit: number }) => {
        if (opts.entity !== undefined) checkEntityId(opts.entity);
        const db = await ctx.db({ unlimitedStatements: true });
        let bar: Progress | undefined;
        const r = await inSnapshot(db.pool, (c) =>
          verifyChains(c, opts.entity, opts.limit, (done, total) => {
            if (total < 50_000) return;
            bar ??= new Progress('audit', total, ctx.stderr, 'entities');
            bar.update(done);
          }),
        );
        bar?.finish();
        ctx.print(r, auditHuman);
        return r.ok ? EXIT.OK : EXIT.FAILURE;
      }),
    );

  audit
    .command('attempts')
    .description('refused UPDATE/DELETE/TRUNCATE on the ledger, and edits that bypassed the triggers')
    .option('--ack', 'acknowledge everything listed, so alerts fire only on later attempts')
    .option('--actor <name>', 'who acknowledges (default: the OS user)')
    .addHelpText(
      'after',
      examples('canon audit attempts', 'canon audit attempts --ack --actor alice') +
        '\n\nThe register survives the rollback of the refused statement; the server log has each statement.' +
        '\nExit 0 nothing new, 1 new attempts since the last --ack (0 after --ack).',
    )
    .action(
      run(async (ctx, opts: { ack?: boolean; actor?: string }) => {
        const db = await ctx.db();
        const before = await tamperAlerts(db.pool);
        if (opts.ack) await acknowledgeTamper(db.pool, opts.actor ?? actorDefault());
        ctx.print(
          { ...before, acknowledged: !!opts.ack },
          (d) => attemptsHuman(d) + (d.acknowledged ? '\nacknowledged: alerts fire again only on new attempts' : ''),
        );
        return opts.ack || before.severity === 'ok' ? EXIT.OK : EXIT.FAILURE;
      }),
    );
};
