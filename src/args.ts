// Parsing and checking what people type. Each check throws a usage error that names the
// argument and says what a good value looks like; nothing reaches the database unchecked.
import fs from 'node:fs';
import os from 'node:os';
import { InvalidArgumentError } from 'commander';
import { usageError } from './errors.js';

export const MAX_PAYLOAD_BYTES = 1024 * 1024;
export const MAX_JSON_DEPTH = 64;

export function intArg(name: string, min: number, max: number) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`${name} must be a whole number, got "${value}"`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be between ${min} and ${max}, got ${n}`);
    return n;
  };
}

export function numberArg(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n))
      throw new InvalidArgumentError(`${name} must be a number, got "${value}"`);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be between ${min} and ${max}, got ${n}`);
    return n;
  };
}

/** "30s", "15m", "2h", "1d" or plain seconds → seconds. */
export function parseDuration(name: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!m) throw usageError(`${name} must be a duration like 30s, 15m or 2h, got "${value}"`);
  const n = Number(m[1]);
  const mult = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[m[2] ?? 's']!;
  return n * mult;
}

const ENTITY_ID = /^[^\s\u0000-\u001f\u007f]{1,200}$/;
export function checkEntityId(id: string): string {
  if (!ENTITY_ID.test(id)) {
    throw usageError(
      `entity id "${printable(id)}" is invalid: use 1 to 200 characters without spaces or control characters`,
    );
  }
  return id;
}

const KIND = /^[A-Za-z0-9_.:-]{1,200}$/;
export function checkKind(kind: string): string {
  if (!KIND.test(kind)) {
    throw usageError(
      `event kind "${printable(kind)}" is invalid: use letters, digits and . _ : - (for example document.created)`,
    );
  }
  return kind;
}

export function printable(s: string, max = 60): string {
  const clean = s.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

function depth(v: unknown, d = 0): number {
  if (d > MAX_JSON_DEPTH) return d;
  if (Array.isArray(v)) return v.reduce((m: number, x) => Math.max(m, depth(x, d + 1)), d + 1);
  if (v && typeof v === 'object') return Object.values(v).reduce((m: number, x) => Math.max(m, depth(x, d + 1)), d + 1);
  return d;
}

/** A JSON object given inline or as @file; size, depth, encoding and NUL are checked here. */
export function parsePayload(raw: string | undefined, what = '--payload'): Record<string, unknown> {
  if (raw === undefined) return {};
  let text: string;
  if (raw.startsWith('@')) {
    const file = raw.slice(1);
    let buf: Buffer;
    try {
      const st = fs.statSync(file);
      if (st.size > MAX_PAYLOAD_BYTES)
        throw usageError(`${what} file ${file} is ${st.size} bytes; the limit is ${MAX_PAYLOAD_BYTES} bytes (1 MiB)`);
      buf = fs.readFileSync(file);
    } catch (e) {
      if ((e as { exitCode?: number }).exitCode) throw e;
      throw usageError(`${what}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
    } catch {
      throw usageError(`${what} file ${file} is not valid UTF-8`);
    }
  } else {
    text = raw;
  }
  if (Buffer.byteLength(text) > MAX_PAYLOAD_BYTES)
    throw usageError(`${what} is ${Buffer.byteLength(text)} bytes; the limit is ${MAX_PAYLOAD_BYTES} bytes (1 MiB)`);
  if (/\uFFFD/.test(text) && !raw.startsWith('@')) throw usageError(`${what} is not valid UTF-8`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw usageError(`${what} is not valid JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw usageError(`${what} must be a JSON object, like '{"content":"hello"}'`);
  if (depth(value) > MAX_JSON_DEPTH) throw usageError(`${what} is nested deeper than ${MAX_JSON_DEPTH} levels`);
  if (/\\u0000/.test(text)) throw usageError(`${what} contains a NUL character (\\u0000), which Postgres cannot store`);
  return value as Record<string, unknown>;
}

export function actorDefault(): string {
  return process.env.CANON_ACTOR || process.env.USER || process.env.LOGNAME || safeUser();
}

function safeUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}
