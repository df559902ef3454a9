// `canon serve`: /health, /health/detailed, /dead-jobs and /metrics over HTTP on loopback.
import { intArg } from '../args.js';
import type { Ctx } from '../context.js';
import { createPool, resolveTarget } from '../db/connect.js';
import { describeUrl } from '../db/url.js';
import { EXIT } from '../errors.js';
import { parseThresholds } from '../observe/thresholds.js';
import { loadPipeline } from '../pipeline/load.js';
import { loadToken } from '../serve/auth.js';
import { createServer, listen } from '../serve/server.js';
import { pipelineOption, readsOnly, thresholdOption } from './shared/options.js';
import { examples, type Register } from './types.js';

interface ServeOpts {
  port: number;
  host: string;
  tokenFile?: string;
  threshold?: string[];
  pipeline?: string;
}

export const register: Register = (program, run) => {
  readsOnly(program.command('serve'))
    .description('HTTP: /health (public), /health/detailed and /dead-jobs (bearer token), /metrics (Prometheus)')
    .option('--port <n>', 'TCP port (0 picks a free one)', intArg('--port', 0, 65535), 9464)
    .option('--host <address>', 'address to bind; keep loopback unless a proxy adds TLS', '127.0.0.1')
    .option('--token-file <path>', 'file holding the bearer token (default: the CANON_SERVE_TOKEN variable)')
    .addOption(thresholdOption())
    .addOption(pipelineOption())
    .addHelpText(
      'after',
      examples(
        'CANON_SERVE_TOKEN=$(openssl rand -hex 32) canon serve',
        'canon serve --port 9464 --token-file /etc/canon/token',
        'curl -s localhost:9464/health',
        'curl -s -H "Authorization: Bearer $CANON_SERVE_TOKEN" "localhost:9464/dead-jobs?since_hours=2&type=tsa"',
        'curl -s localhost:9464/metrics | promtool check metrics',
      ) +
        `\n\n/health answers 200 when OK or WARNING and 503 when CRITICAL or the database is down; /health/detailed
and /dead-jobs answer 401 without the right token (and always when no token is configured).
Runs until SIGINT or SIGTERM, then exits 0. Exit 1 when the port cannot be bound, 2 for bad options.`,
    )
    .action(
      run(async (ctx: Ctx, opts: ServeOpts) => {
        const thresholds = parseThresholds(opts.threshold, EXIT.USAGE);
        const token = loadToken(opts.tokenFile);
        // the /metrics provenance probe checks proofs with the pipeline module's own checks
        const { proofs } = (await loadPipeline(opts.pipeline)).pipeline;
        // serve only reads: a replica (--read-url, CANON_READ_URL) takes its scrapes off the primary
        const target = ctx.readTarget() ?? (await resolveTarget());
        // no connection check at start: the server must come up, and say "critical", while the database is down
        const pool = createPool(target.url, { max: 4, applicationName: 'canon-serve' });
        const server = createServer({ pool, host: opts.host, port: opts.port, token, thresholds, proofs });
        try {
          const addr = await listen(server, opts.host, opts.port);
          const url = `http://${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}`;
          if (!['127.0.0.1', '::1', 'localhost'].includes(opts.host))
            ctx.info(`canon: warning: listening on ${opts.host}, not loopback: put TLS in front of it`);
          if (!token)
            ctx.info(
              'canon: no token configured (CANON_SERVE_TOKEN or --token-file): /health/detailed and /dead-jobs answer 401',
            );
          const from =
            target.source === '--read-url' || target.source === 'CANON_READ_URL' ? 'reading from' : 'database';
          ctx.info(
            `canon: serving ${url} (${from} ${describeUrl(target.url)}); /health /health/detailed /dead-jobs /metrics`,
          );
          if (ctx.json) ctx.stdout.write(`${JSON.stringify({ url, port: addr.port })}\n`);
          await new Promise<void>((resolve) => {
            const stop = () => {
              process.off('SIGINT', stop);
              process.off('SIGTERM', stop);
              server.close(() => resolve());
              server.closeAllConnections();
            };
            process.on('SIGINT', stop);
            process.on('SIGTERM', stop);
          });
        } finally {
          await pool.end().catch(() => {});
        }
        return EXIT.OK;
      }),
    );
};
