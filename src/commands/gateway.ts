// `canon gateway mode [compat|strict]`: show or set how direct job INSERTs are treated.
import { actorDefault } from '../args.js';
import { usageError } from '../errors.js';
import { GATEWAY_SQL } from '../sql/gateway.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  const gw = program
    .command('gateway')
    .description('the gateway: the only way a job is created')
    .addHelpText('after', examples('canon gateway mode', 'canon gateway mode strict'));
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
};
