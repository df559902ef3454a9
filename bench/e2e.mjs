// Entities per second through the example pipeline (protect → tsa → anchor, the flag on):
// `canon demo` in a fresh database, as a user would run it, with no simulated failures.
import { freshDb, migrateDb, runCanon } from './lib.mjs';

export async function endToEnd(o) {
  const db = await freshDb('e2e');
  try {
    await migrateDb(db.url);
    const r = await runCanon(
      [
        'demo',
        '--documents',
        String(o.documents),
        '--concurrency',
        String(o.concurrency),
        '--flaky-rate',
        '0',
        '--json',
      ],
      { DATABASE_URL: db.url },
    );
    if (r.code !== 0) throw new Error(`canon demo exited ${r.code}: ${r.stderr.trim().split('\n').pop()}`);
    const d = JSON.parse(r.stdout);
    return {
      documents: d.documents,
      anchored: d.anchored,
      seconds: d.seconds,
      entities_per_second: d.anchored / d.seconds,
      events: d.events,
      jobs: d.jobs,
      latency_ms: d.latency_ms,
      settings: `canon demo --documents ${o.documents} --concurrency ${o.concurrency} --flaky-rate 0 (one process, both lanes)`,
    };
  } finally {
    await db.drop();
  }
}
