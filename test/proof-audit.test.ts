// The ledger audit on a real Postgres: 1,000 random single-field edits made by a superuser with
// the triggers bypassed (session_replication_role = replica) are each found at the right
// entity and seq; refused edits by a role that is not the owner are kept in the register
// although their statements roll back, and raise the tamper alert until acknowledged.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acknowledgeTamper, ledgerEditRegister, tamperAlerts, verifyChains } from '../src/audit.js';
import { PG, pgCode } from '../src/errors.js';
import { canon, createTestDb, type TestDb } from './helpers.js';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('proofaudit');
});
afterAll(async () => db.end());

// One edit of one field, as SQL over the matched row (aliased e); each changes the stored value.
const EDITS: Record<string, string> = {
  kind: `kind = e.kind || 'x'`,
  payload: `payload = jsonb_set(e.payload, '{tampered}', 'true')`,
  correlation_id: `correlation_id = e.correlation_id || '-x'`,
  causation_id: `causation_id = coalesce(e.causation_id, 0) + 1`,
  trace_id: `trace_id = coalesce(e.trace_id, '') || 't'`,
  actor: `actor = e.actor || '-mallory'`,
  created_at: `created_at = e.created_at + interval '1 microsecond'`,
  prev_hash: `prev_hash = sha256(coalesce(e.prev_hash, '\\x00'::bytea))`,
  hash: `hash = sha256(e.hash)`,
  seq: `seq = e.seq + 1000`,
};

describe('audit verify', () => {
  it('finds each of 1,000 random single-field edits made with the triggers bypassed, at its entity and seq', async () => {
    const prefix = `au${randomBytes(3).toString('hex')}`;
    const n = 1000;
    // entity i gets 2..8 events
    await db.pool.query(
      `select canon.append_event($1 || '-' || e, 'note.added', jsonb_build_object('i', s, 'v', md5(e::text || s::text)), null, null, null,
                                 case when s % 3 = 0 then 'trace-' || e || '-' || s end)
         from generate_series(1, $2::int) e cross join generate_series(1, 2 + e % 7) s order by s, e`,
      [prefix, n],
    );
    const clean = await verifyChains(db.pool, undefined, 5000);
    expect(clean.ok).toBe(true);
    const before = await ledgerEditRegister(db.pool);

    const fields = Object.keys(EDITS);
    const edits = Array.from({ length: n }, (_, k) => {
      const events = 2 + ((k + 1) % 7);
      return {
        entity: `${prefix}-${k + 1}`,
        seq: 1 + Math.floor(Math.random() * events),
        field: fields[Math.floor(Math.random() * fields.length)],
      };
    });
    const c = await db.pool.connect();
    try {
      await c.query('begin');
      await c.query('set local session_replication_role = replica');
      for (const field of fields) {
        const mine = edits.filter((e) => e.field === field);
        if (!mine.length) continue;
        const r = await c.query(
          `update canon.events e set ${EDITS[field]} from unnest($1::text[], $2::int[]) as x(entity_id, seq)
            where e.entity_id = x.entity_id and e.seq = x.seq`,
          [mine.map((m) => m.entity), mine.map((m) => m.seq)],
        );
        expect(r.rowCount).toBe(mine.length);
      }
      await c.query('commit');
    } finally {
      c.release();
    }

    // in chunks of 97 entities, so that edits sit on both sides of many chunk boundaries
    const seen: number[] = [];
    const audit = await verifyChains(db.pool, undefined, 5000, (done) => seen.push(done), 97);
    expect(seen.length).toBeGreaterThan(10);
    expect(seen[seen.length - 1]).toBe(audit.entities);
    expect(audit.ok).toBe(false);
    const found = new Map(audit.breaks.map((b) => [b.entity_id, b]));
    const wrong = edits
      .filter((e) => found.get(e.entity)?.seq !== e.seq)
      .map((e) => ({ ...e, found: found.get(e.entity) }));
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(audit.breaks).toHaveLength(n);
    // every kind of edit was made, and each shows as the problem it is
    const problems = new Set(audit.breaks.map((b) => b.problem));
    expect([...problems].sort()).toEqual(['hash_mismatch', 'prev_hash_mismatch', 'seq_gap']);
    const hashEdit = edits.find((e) => e.field === 'payload')!;
    const b = found.get(hashEdit.entity)!;
    expect(b).toMatchObject({ problem: 'hash_mismatch', seq: hashEdit.seq });
    expect(b.expected_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(b.actual_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(b.expected_hash).not.toBe(b.actual_hash);

    // the bypass itself is in the register (one entry per statement), and the alert is critical
    const after = await ledgerEditRegister(db.pool);
    expect(after.bypass_total - before.bypass_total).toBe(fields.length);
    expect(after.last).toMatchObject({ operation: 'UPDATE', bypassed: true });
    expect((await tamperAlerts(db.pool)).severity).toBe('critical');

    // the command line: one entity, then all (exit 1, first broken link with both hashes)
    const one = await canon(['audit', 'verify', '--entity', hashEdit.entity, '--json'], { url: db.url });
    expect(one.exitCode).toBe(1);
    expect(JSON.parse(one.stdout).breaks).toEqual([
      expect.objectContaining({ entity_id: hashEdit.entity, seq: hashEdit.seq, problem: 'hash_mismatch' }),
    ]);
    const human = await canon(['audit', 'verify', '--entity', hashEdit.entity], { url: db.url });
    expect(human.stdout).toContain(`${hashEdit.entity} seq ${hashEdit.seq}`);
    expect(human.stdout).toMatch(/expected [0-9a-f]{64}\n\s+actual\s+[0-9a-f]{64}/);
    const okOne = await canon(['audit', 'verify', '--entity', `${prefix}-no-such`], { url: db.url });
    expect(okOne.exitCode).toBe(0);
  });

  it('reports nothing for a sound ledger whose positions came out of seq order under contention', async () => {
    const entity = `contended-${randomBytes(4).toString('hex')}`;
    // positions are drawn before the chain trigger takes the entity lock: concurrent appends interleave
    await Promise.all(
      Array.from({ length: 20 }, (_, w) =>
        (async () => {
          for (let i = 0; i < 5; i++)
            await db.pool.query(`select canon.append_event($1, 'note.added', $2::jsonb)`, [
              entity,
              JSON.stringify({ w, i }),
            ]);
        })(),
      ),
    );
    const audit = await verifyChains(db.pool, entity);
    expect(audit.breaks).toEqual([]);
    expect(audit.events).toBe(100);
  });

  it('keeps refused edits by a non-owner role in the register although they roll back, and alerts until acknowledged', async () => {
    const role = `canon_t_mallory_${randomBytes(4).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    await db.pool.query(`create role ${role} login password '${password}'`);
    try {
      await db.pool.query(`grant usage on schema canon to ${role}; grant select, update, delete, truncate on canon.events to ${role};
                           grant select, update, delete on public.events to ${role}`);
      await db.pool.query(`select canon.append_event('victim-doc', 'document.created', '{"content":"x"}')`);
      await acknowledgeTamper(db.pool, 'test');
      const before = await tamperAlerts(db.pool);
      expect(before.severity).toBe('ok');

      const u = new URL(db.url);
      u.username = role;
      u.password = password;
      const mallory = new pg.Client({ connectionString: u.toString() });
      mallory.on('notice', () => {});
      await mallory.connect();
      try {
        for (const sql of [
          `update canon.events set payload = '{"content":"forged"}' where entity_id = 'victim-doc'`,
          `delete from canon.events where entity_id = 'victim-doc'`,
          `truncate canon.events`,
          `update events set kind = 'forged' where entity_id = 'victim-doc'`,
        ]) {
          await mallory.query('begin');
          const err = await mallory.query(sql).catch((e) => e);
          expect(pgCode(err), sql).toBe(PG.CANON_IMMUTABLE);
          await mallory.query('rollback');
        }
      } finally {
        await mallory.end();
      }
      const alert = await tamperAlerts(db.pool);
      expect(alert.severity).toBe('warning');
      expect(alert.refused_new).toBe(4);
      expect(alert.register.last).toMatchObject({ role, operation: 'UPDATE', bypassed: false });
      expect(alert.message).toContain(role);
      // the FacturaXpress guide's own query
      const seed = (await db.pool.query('SELECT * FROM vault_tampering_attempts ORDER BY created_at DESC LIMIT 10'))
        .rows;
      expect(seed).toEqual([
        expect.objectContaining({
          user_id: role,
          operation: 'UPDATE',
          triggers_bypassed: false,
          table_name: 'canon.events',
        }),
      ]);
      expect(Number(seed[0].refused_total)).toBeGreaterThanOrEqual(4);

      const r = await canon(['audit', 'attempts', '--json'], { url: db.url });
      expect(r.exitCode).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ refused_new: 4, severity: 'warning' });
      const ack = await canon(['audit', 'attempts', '--ack', '--actor', 'ops'], { url: db.url });
      expect(ack.exitCode).toBe(0);
      expect((await tamperAlerts(db.pool)).severity).toBe('ok');
      expect((await canon(['audit', 'attempts'], { url: db.url })).exitCode).toBe(0);
    } finally {
      await db.pool.query(`drop owned by ${role}; drop role ${role}`);
    }
  });
});
