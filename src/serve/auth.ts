// Bearer-token check for the detailed endpoints. Both sides are hashed first so the compare
// is constant-time whatever the lengths (timingSafeEqual needs equal-length buffers, and
// comparing lengths first would leak the token's length).
import crypto from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import { usageError } from '../errors.js';

const digest = (s: string) => crypto.createHash('sha256').update(s, 'utf8').digest();

export function checkBearer(req: http.IncomingMessage, token: string | undefined): boolean {
  if (!token) return false;
  const h = req.headers.authorization;
  const m = typeof h === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
  if (!m) return false;
  return crypto.timingSafeEqual(digest(m[1]), digest(token));
}

export const MIN_TOKEN_LENGTH = 16;

/** The token from --token-file, else CANON_SERVE_TOKEN; undefined when neither is set. */
export function loadToken(tokenFile: string | undefined, env = process.env.CANON_SERVE_TOKEN): string | undefined {
  let token: string | undefined;
  let from: string;
  if (tokenFile !== undefined) {
    from = `--token-file ${tokenFile}`;
    try {
      token = fs.readFileSync(tokenFile, 'utf8').trim();
    } catch (e) {
      throw usageError(`cannot read ${from}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  } else {
    from = 'CANON_SERVE_TOKEN';
    token = env === undefined || env === '' ? undefined : env.trim();
    if (token === undefined) return undefined;
  }
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw usageError(
      `the token in ${from} must be at least ${MIN_TOKEN_LENGTH} characters without spaces (try: openssl rand -hex 32)`,
    );
  }
  return token;
}
