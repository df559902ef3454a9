// Writing proof files safely: to a temporary name next to the target, renamed into place only
// when complete, so an interrupted export or backup never leaves a file that looks whole.

import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { usageError } from '../errors.js';

export interface AtomicFile {
  stream: Writable;
  /** writes with backpressure */
  write(chunk: string | Buffer): Promise<void>;
  commit(): Promise<void>;
  abort(): void;
}

export function checkWritableTarget(file: string, what: string): string {
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  if (!fs.existsSync(dir)) throw usageError(`${what}: directory ${dir} does not exist`);
  if (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) throw usageError(`${what}: ${file} is a directory`);
  return abs;
}

export async function writeChunk(stream: Writable, chunk: string | Buffer): Promise<void> {
  if (!stream.write(chunk)) await once(stream, 'drain');
}

/** `head` lets a caller put a transform (gzip) between the writer and the file. */
export function atomicFile(target: string, head?: (file: Writable) => Writable): AtomicFile {
  const tmp = `${target}.tmp-${process.pid}`;
  const file = fs.createWriteStream(tmp, { mode: 0o600 });
  const stream = head ? head(file) : file;
  if (head) stream.pipe(file);
  return {
    stream,
    write: (chunk) => writeChunk(stream, chunk),
    async commit() {
      const closed = once(file, 'close');
      stream.end();
      await closed;
      fs.renameSync(tmp, target);
    },
    abort() {
      stream.destroy();
      file.destroy();
      fs.rmSync(tmp, { force: true });
    },
  };
}
