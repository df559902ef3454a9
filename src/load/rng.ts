// A small seeded generator (mulberry32): the load is a function of its options and seed, so an
// interrupted load resumes with exactly the chunks it would have written, and two machines
// loading with the same seed get the same dataset (apart from the TSA signatures' timestamps).
import { createHash } from 'node:crypto';

export class Rng {
  private s: number;
  constructor(...seed: (string | number)[]) {
    this.s = createHash('sha256').update(seed.join('\u001f')).digest().readUInt32LE(0);
  }
  /** uniform in [0, 1) */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
  /** exponential with the given mean: heavy-tailed sizes (most entities small, a few large) */
  exp(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }
  hex(bytes: number): string {
    let s = '';
    for (let i = 0; i < bytes; i++)
      s += Math.floor(this.next() * 256)
        .toString(16)
        .padStart(2, '0');
    return s;
  }
  uuid(): string {
    const h = this.hex(16);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
  }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  }
}

/** Splits `total` into `parts` integers that differ by at most one, part i of them (exact totals per chunk). */
export function share(total: number, parts: number, i: number): number {
  return Math.floor(((i + 1) * total) / parts) - Math.floor((i * total) / parts);
}
