// Queries behind `canon contracts check` (the RFC's CI contracts).
export const CONTRACTS_SQL = {
  triggers: `select t.tgname as name, c.relname as table_name, t.tgenabled as enabled
               from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
              where n.nspname = 'canon' and not t.tgisinternal`,
  views: `select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = 'public' and c.relkind = 'v' and c.relname = any($1)`,
  typesInUse: `select distinct j.type, j.lane, t.lane as declared_lane
                 from canon.jobs j left join canon.job_types t on t.name = j.type
                where j.status in ('queued', 'running')`,
  probeType: `insert into canon.job_types (name, lane, max_attempts, timeout_seconds, declared_by)
              values ('canon_contract_probe', 'execution', 1, 60, 'contracts') on conflict (name) do nothing`,
  probeJob: `select job_id from canon.enqueue_job($1, '__canon_contract_probe__', '{}'::jsonb, null, null, null, now() - interval '1 day', -2147483648)`,
  claimDecision: `select id, lane from canon.claim_initial_decision_jobs($1, 1000)`,
  claimExecution: `select id, lane from canon.claim_orchestrator_jobs($1, 1000)`,
  jobTypes: `select name, lane from canon.job_types`,
  // SECURITY DEFINER functions run as their owner: their search_path setting, and whether
  // PUBLIC may execute them (a null ACL means the default, which grants PUBLIC EXECUTE)
  securityDefiner: `
    select p.oid::regprocedure::text as name,
           (select substr(c, length('search_path=') + 1) from unnest(p.proconfig) c where c like 'search_path=%') as search_path,
           p.proacl is null or exists (select 1 from aclexplode(p.proacl) a where a.grantee = 0 and a.privilege_type = 'EXECUTE') as public_execute
      from pg_proc p
     where p.prosecdef and p.pronamespace = 'canon'::regnamespace
     order by 1`,
} as const;
