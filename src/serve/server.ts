// `canon serve`: node:http on loopback. /health is public and minimal; /health/detailed and
// /dead-jobs need the bearer token; /metrics is for Prometheus. The server keeps answering
// while the database is away (/health says critical, canon_up is 0) and recovers with it.
import http from 'node:http';
import type pg from 'pg';
import { CanonError, coerceError, EXIT } from '../errors.js';
import { listDeadJobs, parseDeadFilters, type RawDeadFilters } from '../observe/deadjobs.js';
import { computeHealth } from '../observe/health.js';
import type { Thresholds } from '../observe/thresholds.js';
import type { Health } from '../observe/types.js';
import type { PipelineProofs } from '../pipeline/define.js';
import { checkBearer } from './auth.js';
import { CanonMetrics } from './metrics.js';

export interface ServeOptions {
  pool: pg.Pool;
  host: string;
  port: number;
  token?: string;
  thresholds: Thresholds;
  /** the configured pipeline's proofs, for the provenance probe of /metrics */
  proofs?: PipelineProofs;
}

const QUERY_NAMES: Record<keyof RawDeadFilters, string> = {
  limit: 'limit',
  since_hours: 'since_hours',
  type: 'type',
  correlation_id: 'correlation_id',
  reason: 'reason',
};
// a burst of /health calls (load balancers, several monitors) costs one query per second
const HEALTH_CACHE_MS = 1000;

export function createServer(o: ServeOptions): http.Server {
  const metrics = new CanonMetrics(o.pool, o.thresholds, o.proofs);
  let cached: { at: number; h: Promise<Health> } | undefined;
  const health = () => {
    if (!cached || Date.now() - cached.at > HEALTH_CACHE_MS) {
      const h = computeHealth(o.pool, o.thresholds);
      cached = { at: Date.now(), h };
      h.catch(() => (cached = undefined));
    }
    return cached.h;
  };

  const send = (res: http.ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = `${JSON.stringify(body, null, 2)}\n`;
    res.writeHead(code, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
    res.end(res.req.method === 'HEAD' ? undefined : text);
  };
  const unauthorized = (res: http.ServerResponse) =>
    send(
      res,
      401,
      {
        error: o.token
          ? 'missing or wrong bearer token'
          : 'no token configured on this server (CANON_SERVE_TOKEN or --token-file)',
      },
      { 'www-authenticate': 'Bearer realm="canon"' },
    );
  const httpStatus = (h: Health) => (h.status === 'CRITICAL' ? 503 : 200);

  return http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://canon.local');
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return send(res, 405, { error: `${req.method} is not allowed; use GET` }, { allow: 'GET, HEAD' });
      switch (url.pathname) {
        case '/health': {
          const h = await health().catch(() => undefined);
          if (!h)
            return send(res, 503, {
              status: 'critical',
              timestamp: new Date().toISOString(),
              error: 'database unreachable',
            });
          return send(res, httpStatus(h), { status: h.status.toLowerCase(), timestamp: h.checked_at });
        }
        case '/health/detailed': {
          if (!checkBearer(req, o.token)) return unauthorized(res);
          const h = await health();
          return send(res, httpStatus(h), h);
        }
        case '/dead-jobs': {
          if (!checkBearer(req, o.token)) return unauthorized(res);
          const raw: Record<string, string> = {};
          for (const [k, v] of url.searchParams) {
            if (!(k in QUERY_NAMES))
              return send(res, 400, {
                error: `unknown query parameter "${k}": use ${Object.keys(QUERY_NAMES).join(', ')}`,
              });
            raw[k] = v;
          }
          return send(res, 200, await listDeadJobs(o.pool, parseDeadFilters(raw, QUERY_NAMES)));
        }
        case '/metrics': {
          await metrics.refresh();
          const body = await metrics.registry.metrics();
          res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
          return res.end(req.method === 'HEAD' ? undefined : body);
        }
        default:
          return send(res, 404, {
            error: `no such endpoint ${url.pathname}: try /health, /health/detailed, /dead-jobs or /metrics`,
          });
      }
    } catch (e) {
      if (e instanceof CanonError && e.exitCode === EXIT.USAGE) return send(res, 400, { error: e.message });
      // the message may carry SQL details; the operator sees them on the server's stderr
      process.stderr.write(`canon serve: ${req.method} ${url.pathname}: ${coerceError(e).message.split('\n')[0]}\n`);
      return send(res, 503, { error: 'the database could not answer; see the server log' });
    }
  });
}

/** Listens, turning "address in use" and friends into one clear line. */
export function listen(server: http.Server, host: string, port: number): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const what = `${host}:${port}`;
      if (e.code === 'EADDRINUSE')
        reject(
          new CanonError(`cannot listen on ${what}: the port is in use (choose another with --port)`, EXIT.FAILURE),
        );
      else if (e.code === 'EACCES')
        reject(new CanonError(`cannot listen on ${what}: permission denied (use a port above 1024)`, EXIT.FAILURE));
      else if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND')
        reject(new CanonError(`cannot listen on ${what}: no such local address (check --host)`, EXIT.USAGE));
      else reject(new CanonError(`cannot listen on ${what}: ${e.message}`, EXIT.FAILURE));
    });
    server.listen(port, host, () => {
      const a = server.address();
      resolve({ host, port: typeof a === 'object' && a ? a.port : port });
    });
  });
}
