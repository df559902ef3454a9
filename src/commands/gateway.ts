// `canon gateway mode [compat|strict]`: show or set how direct job INSERTs are treated.
// `canon gateway trigger [on]`: show the core trigger, or switch it back on.
import { actorDefault } from '../args.js';
import { PG, pgCode, usageError } from '../errors.js';
import { GATEWAY_SQL } from '../sql/gateway.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  const gw = program
    .command('gateway')
    .description('the gateway: the only way a job is created')
    .addHelpText('after', examples('canon gateway mode', 'canon gateway mode strict', 'canon gateway trigger on'));
  gw.command('mode')
    .description('show the gateway mode, or set it (compat: direct INSERTs are marked and counted; strict: refused)')
    .argument('[mode]', 'compat or strict')
    .addHelpText('after', examples('canon gateway mode', 'canon gateway mode strict', 'canon gateway mode --json'))
    .action(
      run(async (ctx, mode?: string) => {
        if (mode !== undefined && mode !== 'compat' && mode !== 'strict')
          throw usageError(`gateway mode must be compat or strict, got "${mode}"`);
        const db = await ctx.db();
        if (mode) await db.pool.query(GATEWAY_SQL.setMode, [mode, actorDefault()]);
        const cur = (await db.pool.query(GATEWAY_SQL.mode)).rows[0].mode as string;
        const bypassed = (await db.pool.query(GATEWAY_SQL.bypassCount)).rows[0].bypassed as number;
        ctx.print(
          { mode: cur, bypass_count: bypassed },
          (d) =>
            `gateway mode: ${d.mode}${d.bypass_count ? ctx.c.yellow(` (${d.bypass_count} job(s) were inserted without the gateway)`) : ''}`,
        );
      }),
    );
  gw.command('trigger')
    .description(
      'show the core trigger (an event and its decision job commit together), or switch it back on after it was disabled',
    )
    .argument('[state]', 'on')
    .addHelpText(
      'after',
      `${examples('canon gateway trigger', 'canon gateway trigger on', 'canon gateway trigger --json')}

Only the owner of canon.events (whoever ran canon migrate) can switch it. Events appended
while it was off have no decision: \`canon diagnose <entity_id>\` names them and
\`canon jobs redrive <entity_id>\` enqueues it. canon never switches it off.
Exit 0 when it is on (or was switched on), 1 when it is off, 2 for bad input or a role
that may not switch it, 3 when the database is unavailable.`,
    )
    .action(
      run(async (ctx, state?: string) => {
        if (state !== undefined && state !== 'on')
          throw usageError(`gateway trigger takes "on" or nothing, got "${state}" (canon never switches it off)`);
        const db = await ctx.db();
        const was = (await db.pool.query(GATEWAY_SQL.coreTrigger)).rows[0].enabled as boolean;
        if (state === 'on' && !was)
          await db.pool.query(GATEWAY_SQL.enableCoreTrigger).catch((e) => {
            if (pgCode(e) === PG.INSUFFICIENT_PRIVILEGE)
              throw usageError(
                `only the owner of canon.events can switch the core trigger on (${(e as Error).message}): run it with the URL canon migrate uses`,
              );
            throw e;
          });
        const enabled = (await db.pool.query(GATEWAY_SQL.coreTrigger)).rows[0].enabled as boolean;
        ctx.print({ core_trigger_enabled: enabled, changed: enabled !== was }, (d) =>
          d.core_trigger_enabled
            ? `core trigger: on${d.changed ? ' (switched on; events appended while it was off still need canon jobs redrive <entity_id>)' : ''}`
            : ctx.c.red('core trigger: OFF: appended events enqueue no decision (canon gateway trigger on)'),
        );
        return enabled ? 0 : 1;
      }),
    );
};
