// `canon contracts check`: the RFC's CI contracts; exit 0 when all hold.

import { checkContracts } from '../contracts.js';
import { EXIT } from '../errors.js';
import { loadPipeline } from '../pipeline/load.js';
import { pipelineOption } from './shared/options.js';
import { examples, type Register } from './types.js';

export const register: Register = (program, run) => {
  const c = program
    .command('contracts')
    .description('the pipeline contracts CI enforces')
    .addHelpText('after', examples('canon contracts check', 'canon contracts check --json'));
  c.command('check')
    .description(
      "core trigger on, claims return only their lane, types whitelisted (the pipeline's in the execution lane), compat views present, SECURITY DEFINER functions pinned and not PUBLIC, migrations match",
    )
    .addOption(pipelineOption())
    .addHelpText(
      'after',
      `${examples('canon contracts check', 'canon contracts check --json || echo "contract broken"', 'canon contracts check --pipeline ./pipeline.ts')}\n\nExit 0 when every contract holds, 1 when one fails (it is named).`,
    )
    .action(
      run(async (ctx, opts: { pipeline?: string }) => {
        const { pipeline } = await loadPipeline(opts.pipeline);
        const pipelineTypes = Object.keys(pipeline.jobTypes).map((name) => ({ name, lane: 'execution' }));
        const db = await ctx.db({ migrated: false });
        const client = await db.pool.connect();
        try {
          const results = await checkContracts(client, { pipelineTypes });
          const ok = results.every((r) => r.ok);
          ctx.print({ ok, contracts: results }, (d) =>
            d.contracts
              .map((r) => `${r.ok ? ctx.c.green('[PASS]') : ctx.c.red('[FAIL]')} ${r.name}: ${r.detail}`)
              .join('\n'),
          );
          if (!ok && !ctx.json)
            ctx.info(
              `canon: contract failed: ${results
                .filter((r) => !r.ok)
                .map((r) => r.name)
                .join(', ')}`,
            );
          return ok ? EXIT.OK : EXIT.FAILURE;
        } finally {
          client.release();
        }
      }),
    );
};
