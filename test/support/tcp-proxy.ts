// A TCP proxy for fault tests, on 127.0.0.1 only: it forwards bytes between canon and
// Postgres and, while chaos is on, drops connections (both sockets destroyed, as a broken
// network or a load balancer reset would) and stalls them (no byte forwarded either way for
// a while, then the flow resumes or the connection is dropped). blackHole() is the endless
// kind: a connection that sent a matching statement stops forwarding for good, both ways,
// its sockets left open (a hung pooler, a half-dead network path): only canon's reply
// timeout gets the worker out of it.
import net from 'node:net';

export interface ProxyStats {
  connections: number;
  drops: number;
  stalls: number;
}

export interface ChaosOptions {
  /** How often a fault is injected into one random live connection. */
  everyMs: number;
  /** Share of faults that drop at once (the rest stall). */
  dropShare: number;
  maxStallMs: number;
  /** Share of stalls that end in a drop instead of resuming. */
  stallThenDropShare: number;
}

interface Pair {
  client: net.Socket;
  server: net.Socket;
  stalled: boolean;
  /** swallowed for good: nothing is forwarded any more */
  hole?: boolean;
}

interface Trap {
  match: RegExp;
  left: number;
  /** what each swallowed connection was sending (the matching chunk's printable text) */
  caught: string[];
}

export class FaultProxy {
  readonly stats: ProxyStats = { connections: 0, drops: 0, stalls: 0 };
  private readonly pairs = new Set<Pair>();
  private readonly traps: Trap[] = [];
  private server?: net.Server;
  private timer?: NodeJS.Timeout;

  constructor(private readonly target: { host: string; port: number }) {}

  async listen(): Promise<number> {
    this.server = net.createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return (this.server!.address() as net.AddressInfo).port;
  }

  private accept(client: net.Socket): void {
    this.stats.connections++;
    const server = net.connect(this.target.port, this.target.host);
    const pair: Pair = { client, server, stalled: false };
    this.pairs.add(pair);
    const end = () => {
      // a swallowed connection stays open towards the server, as behind a hung pooler: only
      // the server's own timeouts (idle in transaction) end what it was doing
      if (pair.hole) return void client.destroy();
      this.pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    client.on('data', (d) => {
      if (pair.hole) return;
      server.write(d);
      // the statement reaches the server; its answer, and everything after it, never returns
      const text = d.toString('latin1');
      const trap = this.traps.find((t) => t.left > 0 && t.match.test(text));
      if (trap) {
        trap.left--;
        trap.caught.push(
          text
            .replace(/[^\x20-\x7e]+/g, ' ')
            .trim()
            .slice(0, 200),
        );
        pair.hole = true;
      }
    });
    server.on('data', (d) => {
      if (!pair.hole) client.write(d);
    });
    for (const s of [client, server]) {
      s.on('error', end);
      s.on('close', end);
    }
  }

  private drop(p: Pair): void {
    this.stats.drops++;
    this.pairs.delete(p);
    p.client.destroy();
    p.server.destroy();
  }

  private stall(p: Pair, ms: number, thenDrop: boolean): void {
    this.stats.stalls++;
    p.stalled = true;
    p.client.pause();
    p.server.pause();
    setTimeout(() => {
      p.stalled = false;
      if (thenDrop) return this.drop(p);
      p.client.resume();
      p.server.resume();
    }, ms).unref();
  }

  /**
   * The next `times` connections that send a chunk matching `match` forward it and then
   * nothing more, either way, for as long as the sockets stay open. Returns what they sent.
   */
  blackHole(match: RegExp, times = 1): string[] {
    const trap = { match, left: times, caught: [] };
    this.traps.push(trap);
    return trap.caught;
  }

  /** Starts injecting faults; `random` makes a run reproducible from a seed. */
  chaos(o: ChaosOptions, random: () => number = Math.random): void {
    this.timer = setInterval(() => {
      const live = [...this.pairs].filter((p) => !p.stalled);
      if (live.length === 0) return;
      const p = live[Math.floor(random() * live.length)];
      if (random() < o.dropShare) this.drop(p);
      else this.stall(p, 50 + random() * (o.maxStallMs - 50), random() < o.stallThenDropShare);
    }, o.everyMs);
    this.timer.unref();
  }

  calm(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const p of this.pairs) {
      if (p.stalled) {
        p.stalled = false;
        p.client.resume();
        p.server.resume();
      }
    }
  }

  async close(): Promise<void> {
    this.calm();
    for (const p of this.pairs) this.drop(p);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** mulberry32: a tiny seeded generator, so a failing chaos run can be replayed with its seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
