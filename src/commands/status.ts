// `canon status <entity_id>`: an entity's derived status (one primary-key read), and
// `canon status verify`: every stored status against a recomputation from scratch.
import { checkEntityId } from '../args.js';
import { CanonError, EXIT } from '../errors.js';
import { type EntityStatus, readStatus, type StatusVerification, verifyStatus } from '../proof/status.js';
import { examples, type Register } from './types.js';

function human(
  s: EntityStatus,
  c: { green: (x: string) => string; red: (x: string) => string; yellow: (x: string) => string },
): string {
  const colour =
    s.status === 'completed'
      ? c.green
      : s.status === 'failed'
        ? c.red
        : s.status === 'blocked'
          ? c.yellow
          : (x: string) => x;
  return [
    `${s.entity_id}: ${colour(s.status)}  health ${s.health_score.toFixed(2)}`,
    `  jobs  ${s.jobs_total} total: ${s.jobs_queued} queued (${s.jobs_blocked} blocked), ${s.jobs_running} running, ${s.jobs_succeeded} succeeded, ${s.jobs_failed} failed (${s.jobs_dead} dead), ${s.jobs_cancelled} cancelled`,
    `  runs  ${s.runs_total} total: ${s.runs_running} running, ${s.runs_succeeded} succeeded, ${s.runs_failed} failed, ${s.runs_cancelled} released`,
    `  ledger head seq ${s.head_seq}${s.head_hash ? ` hash ${s.head_hash.slice(0, 16)}…` : ''}; status updated ${new Date(s.updated_at).toISOString()}`,
  ].join('\n');
}

function verifyHuman(v: StatusVerification): string {
  const lines = v.differences.slice(0, 50).map((d) => {
    if (!d.stored) return `  ${d.entity_id}: no status row (expected ${String(d.expected?.status)})`;
    if (!d.expected) return `  ${d.entity_id}: status row without an entity`;
    return `  ${d.entity_id}: ${Object.entries(d.fields)
      .map(([k, f]) => `${k} ${String(f.stored)} → ${String(f.expected)}`)
      .join(', ')}`;
  });
  if (v.differences.length > 50) lines.push(`  … and ${v.differences.length - 50} more (--json lists all)`);
  const head = v.ok
    ? `status verified: ${v.entities} entities, all rows equal the recomputation`
    : `status differs for ${v.differences.length} of ${v.entities} entities (stored → recomputed):`;
  return [head, ...lines, ...(v.fixed ? [`refreshed ${v.fixed} rows`] : [])].join('\n');
}

export const register: Register = (program, run) => {
  const status = program
    .command('status')
    .description("an entity's derived status: pending, in_progress, blocked, completed or failed, with a health score")
    .argument('[entity_id]', 'the entity to read')
    .addHelpText(
      'after',
      examples('canon status doc-1', 'canon status doc-1 --json', 'canon status verify') +
        '\n\nStatus rules (first match): failed = a dead job not superseded by a retry; in_progress = a job running;' +
        '\nblocked = a queued job held or of a paused type; pending = nothing has run yet; in_progress = work queued;' +
        '\ncompleted = nothing queued or running and a job succeeded; blocked = only cancelled jobs.' +
        '\nhealth = succeeded runs / finished (succeeded + failed) runs.' +
        '\nExit 0 found, 1 no such entity, 2 bad entity id. An entity literally named "verify": canon status --entity verify.',
    )
    .option('--entity <id>', 'the entity to read (when its id is also a subcommand name)')
    .action(
      run(async (ctx, entityArg: string | undefined, opts: { entity?: string }) => {
        const entityId = opts.entity ?? entityArg;
        if (!entityId)
          throw new CanonError('name an entity: canon status <entity_id> (or canon status verify)', EXIT.USAGE);
        checkEntityId(entityId);
        const db = await ctx.db();
        const s = await readStatus(db.pool, entityId);
        if (!s) throw new CanonError(`entity ${entityId} does not exist`, EXIT.FAILURE);
        ctx.print(s, (d) => human(d, ctx.c));
        return EXIT.OK;
      }),
    );

  status
    .command('verify')
    .description("recompute every entity's status from its jobs and runs and report rows that differ")
    .option('--fix', 'refresh the rows that differ (through the same function the triggers use)')
    .addHelpText(
      'after',
      `${examples('canon status verify', 'canon status verify --json', 'canon status verify --fix')}\n\nExit 0 when every row equals the recomputation, 1 when some differ (also with --fix: they differed).`,
    )
    .action(
      run(async (ctx, opts: { fix?: boolean }) => {
        const db = await ctx.db({ unlimitedStatements: true });
        const v = await verifyStatus(db.pool, { fix: opts.fix });
        ctx.print(v, verifyHuman);
        return v.ok ? EXIT.OK : EXIT.FAILURE;
      }),
    );
};
