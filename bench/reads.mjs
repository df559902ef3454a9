// The read paths on a loaded dataset (canon load): each measured in-process (the query and
// its assembly, what a long-running caller such as `canon serve` or `watch` pays), plus
// `canon health` and an idle `canon tick` as whole processes (what cron and monitors pay).
import pg from 'pg';
import { importDist, median, round, runCanon, stats, timeCalls } from './lib.mjs';

async function sampleEntities(pool, n, where = 'true') {
  return (
    await pool.query(`select entity_id from canon.entity_status where ${where} order by random() limit $1`, [n])
  ).rows.map((r) => r.entity_id);
}

// The dataset is loaded once and then left quiet, so at today's now() health's 1 h gap window
// holds almost no events and the gap check would look cheap for the wrong reason. health, watch
// and `canon health` get a window from an hour before the newest event to now (minus the grace
// period, as always): an hour of the dataset's activity, as a live deployment's last hour would
// hold. Taken again before each of them (the window ends at now); what it held is recorded.
async function gapWindow(pool, DEFAULT_THRESHOLDS) {
  const age =
    (await pool.query(`select extract(epoch from now() - max(created_at))::float8 as s from canon.events`)).rows[0].s ??
    0;
  const thresholds = {
    ...DEFAULT_THRESHOLDS,
    gap_window_seconds: Math.ceil(Math.max(0, age) + DEFAULT_THRESHOLDS.gap_window_seconds),
  };
  const held = (
    await pool.query(
      `select $1::int as seconds, count(*)::int as events, count(*) filter (where kind not like 'job.%.required')::int as decision_checked,
            count(distinct entity_id)::int as entities
       from canon.events where created_at > now() - make_interval(secs => $1::float8) and created_at <= now() - make_interval(secs => $2::float8)`,
      [thresholds.gap_window_seconds, thresholds.gap_grace_seconds],
    )
  ).rows[0];
  return { thresholds, held };
}

export async function readPaths(url, o) {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => {});
  const out = {};
  try {
    const counts = (
      await pool.query(`select (select count(*) from canon.events)::bigint as events, (select count(*) from canon.jobs)::bigint as jobs,
      (select count(*) from canon.job_runs)::bigint as runs, (select count(*) from canon.entities)::bigint as entities`)
    ).rows[0];
    out.dataset = counts;
    const { computeHealth } = await importDist('src/observe/health.js');
    const { DEFAULT_THRESHOLDS } = await importDist('src/observe/thresholds.js');
    let gap = await gapWindow(pool, DEFAULT_THRESHOLDS);
    out.gap_window = gap.held;
    out.health = stats(await timeCalls(o.samples.health, () => computeHealth(pool, gap.thresholds)));
    const { listDeadJobs, parseDeadFilters, CLI_NAMES } = await importDist('src/observe/deadjobs.js');
    const dayFilters = parseDeadFilters({}, CLI_NAMES);
    out.dead_jobs = stats(await timeCalls(o.samples.health, () => listDeadJobs(pool, dayFilters)));
    const monthFilters = parseDeadFilters({ since_hours: '720' }, CLI_NAMES);
    out.dead_jobs_30d = stats(await timeCalls(o.samples.health, () => listDeadJobs(pool, monthFilters)));
    const { loadChain, buildTree } = await importDist('src/observe/trace.js');
    const traced = await sampleEntities(pool, o.samples.trace);
    out.trace = stats(
      await timeCalls(traced.length, async (i) => buildTree(await loadChain(pool, traced[i], 'entity'))),
    );
    const { readStatus } = await importDist('src/proof/status.js');
    const ids = await sampleEntities(pool, o.samples.status);
    out.status_read = stats(await timeCalls(ids.length, (i) => readStatus(pool, ids[i]), 20));
    const { takeProvenance, checkProvenance } = await importDist('src/proof/provenance.js');
    const { inSnapshot } = await importDist('src/proof/snapshot.js');
    const anchored = await sampleEntities(pool, o.samples.provenance * 10, `status = 'completed'`);
    const files = [];
    for (let i = 0; i + 10 <= anchored.length; i += 10)
      files.push(await inSnapshot(pool, (c) => takeProvenance(c, anchored.slice(i, i + 10))));
    let failed = 0;
    out.provenance_n10 = stats(
      await timeCalls(
        files.length,
        async (i) => {
          const results = await inSnapshot(pool, (c) => checkProvenance(c, files[i]));
          failed += results.filter((r) => !r.ok).length;
        },
        0,
      ),
    );
    out.provenance_n10.failed_claims = failed;
    try {
      const { readSnapshot } = await importDist('src/tui/snapshot.js');
      gap = await gapWindow(pool, DEFAULT_THRESHOLDS);
      out.watch_snapshot = stats(
        await timeCalls(o.samples.health, () =>
          readSnapshot(pool, gap.thresholds, { type: null, entity: null }, 'bench'),
        ),
      );
      out.watch_snapshot.gap_window = gap.held;
    } catch (e) {
      out.watch_snapshot = { missing: `watch snapshot not measurable: ${e.message.split('\n')[0]}` };
    }
    const proc = [];
    gap = await gapWindow(pool, DEFAULT_THRESHOLDS);
    for (let i = 0; i < o.samples.process; i++)
      proc.push(
        (
          await runCanon(
            ['health', '--json', '--threshold', `gap_window_seconds=${gap.thresholds.gap_window_seconds}`],
            { DATABASE_URL: url },
          )
        ).ms,
      );
    out.health_process = {
      n: proc.length,
      median_ms: round(median(proc)),
      gap_window: gap.held,
      note: 'whole process: node start, connect, migrations check, the snapshot, exit',
    };
    return out;
  } finally {
    await pool.end();
  }
}

/** An idle `canon tick` as a whole process: the backlog and stuck runs the dataset holds are drained first. */
export async function idleTick(url, o) {
  let drained = 0;
  for (let i = 0; i < 20; i++) {
    const r = await runCanon(['tick', '--json', '--max-jobs', '100000', '--max-seconds', '120'], { DATABASE_URL: url });
    if (r.code !== 0 && !r.stdout) throw new Error(`canon tick exited ${r.code}: ${r.stderr.trim().split('\n').pop()}`);
    const s = JSON.parse(r.stdout);
    drained += s.work.claimed + s.rescued.total;
    if (s.work.claimed === 0 && s.rescued.total === 0) {
      const pool = new pg.Pool({ connectionString: url, max: 1 });
      const next = (
        await pool.query(
          `select extract(epoch from min(run_at) - now())::float8 as s from canon.jobs where status = 'queued'`,
        )
      ).rows[0].s;
      await pool.end();
      if (next === null || next > 120) break;
      await new Promise((r) => setTimeout(r, Math.max(0, next * 1000) + 200)); // a retry's backoff is running out
    }
  }
  const ms = [];
  for (let i = 0; i < o.samples.process; i++) {
    const r = await runCanon(['tick', '--json'], { DATABASE_URL: url });
    ms.push(r.ms);
  }
  return {
    n: ms.length,
    median_ms: round(median(ms)),
    min_ms: round(Math.min(...ms)),
    max_ms: round(Math.max(...ms)),
    drained_first: drained,
    note: 'whole process, nothing to rescue or run',
  };
}
