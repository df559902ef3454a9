// A description of everything canon's migrations create, read from the system catalogs, so
// that two ways of building the schema can be compared object by object.
import type pg from 'pg';

export type Catalog = Record<string, Record<string, unknown>>;

/** Function bodies compared without their comments and with whitespace collapsed. */
export function normaliseBody(src: string): string {
  let out = '';
  for (let i = 0; i < src.length; ) {
    const c = src[i];
    if (c === '-' && src[i + 1] === '-') {
      const e = src.indexOf('\n', i);
      i = e < 0 ? src.length : e;
      continue;
    }
    if (c === "'") {
      let j = i + 1;
      while (j < src.length && !(src[j] === "'" && src[j + 1] !== "'")) j += src[j] === "'" ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    out += c;
    i++;
  }
  return out.replace(/\s+/g, ' ').trim();
}

const SCHEMAS = `n.nspname in ('canon', 'public')`;

const QUERIES: Record<string, string> = {
  relations: `
    select n.nspname || '.' || c.relname as key, c.relkind, c.relpersistence, c.reloptions, c.relacl::text[] as acl
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where ${SCHEMAS} and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')`,
  columns: `
    select n.nspname || '.' || c.relname || '.' || a.attname as key,
           row_number() over (partition by c.oid order by a.attnum) as position,
           format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null,
           pg_get_expr(d.adbin, d.adrelid) as default_expr, a.attidentity as identity, a.attgenerated as generated,
           a.attacl::text[] as acl
      from pg_attribute a
      join pg_class c on c.oid = a.attrelid
      join pg_namespace n on n.oid = c.relnamespace
      left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
     where ${SCHEMAS} and c.relkind in ('r', 'p', 'v', 'm') and a.attnum > 0 and not a.attisdropped`,
  constraints: `
    select n.nspname || '.' || c.relname || '.' || k.conname as key, k.contype, pg_get_constraintdef(k.oid) as def,
           k.condeferrable, k.condeferred
      from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
     where ${SCHEMAS}`,
  indexes: `
    select n.nspname || '.' || i.relname as key, pg_get_indexdef(i.oid) as def
      from pg_index x join pg_class i on i.oid = x.indexrelid join pg_namespace n on n.oid = i.relnamespace
     where ${SCHEMAS}`,
  sequences: `
    select n.nspname || '.' || c.relname as key, format_type(s.seqtypid, null) as type, s.seqstart, s.seqincrement,
           s.seqmin, s.seqmax, s.seqcache, s.seqcycle
      from pg_sequence s join pg_class c on c.oid = s.seqrelid join pg_namespace n on n.oid = c.relnamespace
     where ${SCHEMAS}`,
  functions: `
    select p.oid::regprocedure::text as key, p.prokind, l.lanname as language, pg_get_function_result(p.oid) as result,
           pg_get_function_arguments(p.oid) as arguments, p.provolatile, p.proparallel, p.proisstrict, p.prosecdef,
           p.proleakproof, p.procost, p.prorows,
           (select array_agg(x order by x) from unnest(p.proconfig) x) as config, p.proacl::text[] as acl, p.prosrc as body
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_language l on l.oid = p.prolang
     where ${SCHEMAS}`,
  triggers: `
    select t.tgrelid::regclass::text || '.' || t.tgname as key, pg_get_triggerdef(t.oid) as def, t.tgenabled
      from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
     where ${SCHEMAS} and not t.tgisinternal`,
  views: `
    select n.nspname || '.' || c.relname as key, pg_get_viewdef(c.oid) as def
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where ${SCHEMAS} and c.relkind in ('v', 'm')`,
  schemas: `select n.nspname as key, n.nspacl::text[] as acl from pg_namespace n where n.nspname = 'canon'`,
  default_privileges: `
    select coalesce(n.nspname, '') || '.' || d.defaclobjtype::text as key, d.defaclacl::text[] as acl
      from pg_default_acl d left join pg_namespace n on n.oid = d.defaclnamespace`,
  roles: `
    select r.rolname as key, r.rolcanlogin as login, r.rolinherit as inherit,
           array(select g.rolname from pg_auth_members m join pg_roles g on g.oid = m.roleid
                  where m.member = r.oid order by 1) as member_of
      from pg_roles r where r.rolname like 'canon\\_%'`,
  // rows the migrations seed (values that depend on when they ran are left out)
  seeded_rows: `
    select 'settings.' || key as key, case when key = 'trace_policy_cutoff' then '<time of migration>' else value end as value
      from canon.settings
    union all select 'job_types.' || name, (to_jsonb(t) - 'created_at' - 'updated_at')::text from canon.job_types t
    union all select 'run_id_guard', count(*)::text from canon.run_id_guard`,
};

export async function readCatalog(c: pg.ClientBase): Promise<Catalog> {
  const out: Catalog = {};
  for (const [kind, sql] of Object.entries(QUERIES)) {
    const rows = (await c.query(sql)).rows;
    for (const { key, ...rest } of rows) {
      if (kind === 'functions') rest.body = normaliseBody(String(rest.body));
      out[`${kind} ${key}`] = rest;
    }
  }
  return out;
}

export interface CatalogDifference {
  object: string;
  only?: 'left' | 'right';
  left?: unknown;
  right?: unknown;
}

export function diffCatalogs(left: Catalog, right: Catalog): CatalogDifference[] {
  const diffs: CatalogDifference[] = [];
  for (const key of new Set([...Object.keys(left), ...Object.keys(right)])) {
    if (!(key in right)) diffs.push({ object: key, only: 'left' });
    else if (!(key in left)) diffs.push({ object: key, only: 'right' });
    else {
      for (const field of new Set([...Object.keys(left[key]), ...Object.keys(right[key])])) {
        const a = JSON.stringify(left[key][field]);
        const b = JSON.stringify(right[key][field]);
        if (a !== b) diffs.push({ object: `${key} ${field}`, left: left[key][field], right: right[key][field] });
      }
    }
  }
  return diffs.sort((a, b) => a.object.localeCompare(b.object));
}
