// The RFC's CI contracts, checked against a live database. The claim contract really claims
// (probe jobs of both lanes, priority first) inside a transaction that is always rolled back,
// so it proves the functions' behaviour, not just their presence, and changes nothing.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { schemaStatus } from './migrate.js';
import { CONTRACTS_SQL } from './sql/contracts.js';

export interface ContractResult {
  name: string;
  ok: boolean;
  detail: string;
}

export const COMPAT_VIEWS = ['document_entities', 'events', 'executor_jobs', 'executor_job_runs', 'feature_flags'];
const REQUIRED_TRIGGERS = [
  'canon_core_trigger',
  'canon_events_chain',
  'canon_events_immutable',
  'canon_events_no_truncate',
  'canon_jobs_gateway_guard',
  'canon_flags_history',
];

export async function checkContracts(
  client: pg.ClientBase,
  opts: { pipelineTypes?: { name: string; lane: string }[] } = {},
): Promise<ContractResult[]> {
  const out: ContractResult[] = [];

  const trig = (await client.query(CONTRACTS_SQL.triggers)).rows as { name: string; enabled: string }[];
  for (const name of REQUIRED_TRIGGERS) {
    const t = trig.find((r) => r.name === name);
    const label =
      name === 'canon_core_trigger' ? 'core_trigger_enabled' : `trigger_${name.replace(/^canon_/, '')}_enabled`;
    out.push({
      name: label,
      ok: !!t && (t.enabled === 'O' || t.enabled === 'A'),
      detail: !t
        ? `trigger ${name} is missing`
        : t.enabled === 'D'
          ? `trigger ${name} is disabled: ALTER TABLE ... ENABLE TRIGGER ${name}`
          : t.enabled === 'R'
            ? `trigger ${name} fires only in replica mode`
            : `trigger ${name} is enabled`,
    });
  }

  // claim functions: each returns only its lane, even when both lanes have work
  await client.query('begin');
  try {
    await client.query(CONTRACTS_SQL.probeType);
    const d = (await client.query(CONTRACTS_SQL.probeJob, ['decide'])).rows[0].job_id as number;
    const x = (await client.query(CONTRACTS_SQL.probeJob, ['canon_contract_probe'])).rows[0].job_id as number;
    const worker = `contract-${randomUUID()}`;
    const dec = (await client.query(CONTRACTS_SQL.claimDecision, [worker])).rows as { id: number; lane: string }[];
    const exe = (await client.query(CONTRACTS_SQL.claimExecution, [worker])).rows as { id: number; lane: string }[];
    const decOk =
      dec.every((r) => r.lane === 'decision') && dec.some((r) => r.id === d) && !dec.some((r) => r.id === x);
    const exeOk =
      exe.every((r) => r.lane === 'execution') && exe.some((r) => r.id === x) && !exe.some((r) => r.id === d);
    out.push({
      name: 'claim_initial_decision_jobs_only_decision',
      ok: decOk,
      detail: decOk
        ? `returned ${dec.length} decision job(s) and no execution job`
        : `returned lanes ${[...new Set(dec.map((r) => r.lane))].join(',') || 'none'}`,
    });
    out.push({
      name: 'claim_orchestrator_jobs_only_execution',
      ok: exeOk,
      detail: exeOk
        ? `returned ${exe.length} execution job(s) and no decision job`
        : `returned lanes ${[...new Set(exe.map((r) => r.lane))].join(',') || 'none'}`,
    });
  } catch (e) {
    out.push({ name: 'claim_functions', ok: false, detail: `claim probe failed: ${(e as Error).message}` });
  } finally {
    await client.query('rollback');
  }

  const inUse = (await client.query(CONTRACTS_SQL.typesInUse)).rows as {
    type: string;
    lane: string;
    declared_lane: string | null;
  }[];
  const badUse = inUse.filter((r) => r.declared_lane === null || r.declared_lane !== r.lane);
  const known = (await client.query(CONTRACTS_SQL.jobTypes)).rows as { name: string; lane: string }[];
  // the configured pipeline's types: one whitelisted in another lane stops its workers (they
  // refuse to declare it); one not declared yet is normal before the first worker starts
  const pipelineTypes = opts.pipelineTypes ?? [];
  const wrongLane = pipelineTypes.filter((p) => known.some((k) => k.name === p.name && k.lane !== p.lane));
  const undeclared = pipelineTypes.filter((p) => !known.some((k) => k.name === p.name));
  out.push({
    name: 'job_types_whitelisted',
    ok: badUse.length === 0 && wrongLane.length === 0,
    detail:
      badUse.length > 0
        ? `jobs use types outside the whitelist or in the wrong lane: ${badUse.map((b) => `${b.type}/${b.lane}`).join(', ')}`
        : wrongLane.length > 0
          ? `pipeline types whitelisted in another lane: ${wrongLane.map((p) => p.name).join(', ')} (rename them in the pipeline: its workers refuse to start)`
          : `${inUse.length} type(s) in use, all whitelisted in their lane${
              undeclared.length
                ? `; pipeline types not declared yet: ${undeclared.map((p) => p.name).join(', ')} (canon work declares them when it starts)`
                : ''
            }`,
  });

  const views = new Set((await client.query(CONTRACTS_SQL.views, [COMPAT_VIEWS])).rows.map((r) => r.name as string));
  const missingViews = COMPAT_VIEWS.filter((v) => !views.has(v));
  out.push({
    name: 'compat_views_present',
    ok: missingViews.length === 0,
    detail: missingViews.length ? `missing views: ${missingViews.join(', ')}` : `${COMPAT_VIEWS.join(', ')}`,
  });

  out.push(...(await securityDefinerContracts(client)));

  const st = await schemaStatus(client);
  const states = [...st.migrations, ...st.definitions];
  const bad = states.filter((s) => s.state !== 'applied');
  out.push({
    name: 'migrations_match_files',
    ok: bad.length === 0,
    detail: bad.length
      ? bad.map((s) => `${s.file}: ${s.state}`).join('; ')
      : `${st.migrations.length} migrations and ${st.definitions.length} definitions files applied, checksums match`,
  });

  return out;
}

/**
 * A SECURITY DEFINER function runs with its owner's rights, so it must not look up names where
 * a caller can plant objects: its search_path is pinned, names no schema others can write
 * (public, "$user") and puts pg_temp last (left out, pg_temp is searched first). And only the
 * roles granted it may call it: EXECUTE is revoked from PUBLIC.
 */
export async function securityDefinerContracts(client: pg.ClientBase): Promise<ContractResult[]> {
  const fns = (await client.query(CONTRACTS_SQL.securityDefiner)).rows as {
    name: string;
    search_path: string | null;
    public_execute: boolean;
  }[];
  const unpinned = fns.filter((f) => !searchPathIsPinned(f.search_path));
  const open = fns.filter((f) => f.public_execute);
  const list = (xs: typeof fns, why: (f: (typeof fns)[number]) => string) =>
    xs.slice(0, 5).map(why).join('; ') + (xs.length > 5 ? ` and ${xs.length - 5} more` : '');
  return [
    {
      name: 'security_definer_search_path_pinned',
      ok: unpinned.length === 0,
      detail: unpinned.length
        ? `${list(unpinned, (f) => `${f.name} has ${f.search_path === null ? 'no search_path' : `search_path ${f.search_path}`}`)}: ALTER FUNCTION ... SET search_path = pg_catalog, canon, pg_temp`
        : `${fns.length} SECURITY DEFINER function(s), each with search_path ending in pg_temp`,
    },
    {
      name: 'security_definer_not_executable_by_public',
      ok: open.length === 0,
      detail: open.length
        ? `${list(open, (f) => f.name)} executable by PUBLIC: REVOKE EXECUTE ON FUNCTION ... FROM PUBLIC`
        : `${fns.length} SECURITY DEFINER function(s), none executable by PUBLIC`,
    },
  ];
}

/** pg_temp named last, and no schema that other roles can usually create objects in. */
export function searchPathIsPinned(setting: string | null): boolean {
  if (!setting) return false;
  const parts = setting.split(',').map((s) => s.trim().replace(/^"(.*)"$/, '$1'));
  return parts[parts.length - 1] === 'pg_temp' && !parts.some((p) => p === 'public' || p === '$user' || p === '');
}
