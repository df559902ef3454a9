// `canon load`: a synthetic dataset at the seed's scale, written straight into the tables with
// COPY by one session whose ordinary triggers are off (session_replication_role = replica, so
// it needs a superuser). The loader writes what the triggers would have: hash chains computed
// in Node exactly as canon.event_hash, entity heads, one decision job per event or burst, the
// status rows (through canon.entity_status_compute, the function the status triggers call).
// Each chunk of entities is one transaction that also advances a progress marker, so an
// interrupted load resumes where it stopped (--resume) and a non-empty database is refused.
// The story is the example pipeline's (protect → tsa → anchor); its proofs are made by the
// configured pipeline module (`proofs.synthetic`), so they verify with that module's checks.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { z } from 'zod';
import { CanonError, databaseError, EXIT, usageError } from '../errors.js';
import type { Pipeline, SyntheticProofs } from '../pipeline/define.js';
import { loadPipeline } from '../pipeline/load.js';
import { syncPipeline } from '../pipeline/sync.js';
import { LOAD_SQL } from '../sql/load.js';
import type { Json } from './jsonb.js';
import { isoMicros } from './mirror.js';
import { chunkPlan, type LoadOptions } from './plan.js';
import { Rng } from './rng.js';
import { type ChunkRows, chunkRows } from './rows.js';
import { ACTIVE_DAYS, buildChunk, type Chunk, planChunk, STEPS, type StoryContext } from './story.js';

const markerSchema = z.object({
  format: z.literal('canon.load/1'),
  options: z.object({
    entities: z.number(),
    jobs: z.number(),
    runs: z.number(),
    events: z.number(),
    days: z.number(),
    seed: z.string(),
    prefix: z.string(),
    chunk: z.number().default(0),
  }),
  now_us: z.number(),
  chunks: z.number(),
  chunks_done: z.number(),
  status: z.enum(['loading', 'complete']),
  seconds: z.number(),
});
type Marker = z.infer<typeof markerSchema>;

export interface LoadProgress {
  chunk(done: number, total: number, events: number): void;
  phase(what: string): void;
}

export interface LoadSummary {
  options: LoadOptions;
  resumed_from_chunk: number;
  chunks: number;
  counts: { entities: number; events: number; jobs: number; runs: number };
  mix: Record<string, number>;
  seconds: { total: number; rows: number; analyze: number; including_resumed_runs: number };
}

const sameOptions = (a: LoadOptions, b: LoadOptions) =>
  (Object.keys(a) as (keyof LoadOptions)[]).every((k) => a[k] === b[k]);

/** What the target holds decides: start, resume, or refuse with one line. */
async function startingPoint(
  c: pg.ClientBase,
  o: LoadOptions,
  resume: boolean,
): Promise<{ marker: Marker; from: number }> {
  const occ = (await c.query(LOAD_SQL.occupancy)).rows[0];
  const fresh = (): Marker => ({
    format: 'canon.load/1',
    options: o,
    now_us: Date.now() * 1000,
    chunks: chunkPlan(o).chunks,
    chunks_done: 0,
    status: 'loading',
    seconds: 0,
  });
  let marker: Marker | undefined;
  if (occ.marker) {
    const parsed = markerSchema.safeParse(JSON.parse(occ.marker));
    if (parsed.success) marker = parsed.data;
  }
  if (!occ.events && !occ.jobs && !occ.entities) return { marker: fresh(), from: 0 };
  if (!marker) {
    throw usageError(
      'the target database is not empty (it has entities, events or jobs that canon load did not write): load into an empty database, e.g. createdb canon_bench and DATABASE_URL=postgres://…/canon_bench',
    );
  }
  const opts = marker.options;
  const desc = `${opts.entities.toLocaleString('en-US')} entities, seed ${opts.seed}`;
  if (marker.status === 'complete')
    throw usageError(`the target database already holds a complete canon load (${desc}): load into an empty database`);
  if (!resume)
    throw usageError(
      `the target database holds an interrupted canon load (${desc}, chunk ${marker.chunks_done} of ${marker.chunks}): run canon load --resume with the same options to finish it`,
    );
  if (!sameOptions(opts, o))
    throw usageError(
      `--resume: the interrupted load was started with other options (${JSON.stringify(opts)}): pass the same counts, --days, --seed and --prefix`,
    );
  return { marker, from: marker.chunks_done };
}

/** The pipeline's maker of proofs in bulk; refuses a pipeline the story does not fit, before anything is written. */
function storyProofs(p: Pipeline, file: string): () => SyntheticProofs {
  const missing = STEPS.filter((s) => !(s in p.jobTypes));
  if (missing.length)
    throw usageError(
      `canon load writes the example pipeline's story (${STEPS.join(' → ')}); pipeline ${p.name} (${file}) has no job type ${missing.join(', ')}`,
    );
  const proofs = p.proofs;
  if (!proofs?.synthetic)
    throw usageError(
      `canon load needs the pipeline's proofs made in bulk; pipeline ${p.name} (${file}) declares no proofs.synthetic`,
    );
  return () => proofs.synthetic!();
}

function storyContext(o: LoadOptions, nowUs: number, creator: string, proofs: SyntheticProofs): StoryContext {
  const wr = new Rng(o.seed, 'workers');
  return {
    o,
    nowUs,
    workers: Array.from({ length: 8 }, () => `work-${wr.uuid()}`),
    creator,
    sha256: (text) => createHash('sha256').update(text, 'utf8').digest('hex'),
    // a token as the tsa step would have issued it, at the time of its run
    stamp: (hash, id, atUs) => proofs.stamp(hash, id, `${isoMicros(atUs).slice(0, 23)}Z`) as Json,
    // the anchor step's result for each document of a batch
    anchor: (batch) => proofs.anchor(batch) as Map<string, Json>,
  };
}

async function copyRows(
  c: pg.ClientBase,
  table: 'entities' | 'events' | 'jobs' | 'job_runs',
  rows: string[],
): Promise<void> {
  if (!rows.length) return;
  const stream = c.query(copyFrom(LOAD_SQL.copy(table)));
  async function* blocks() {
    // ~1 MB writes: few enough to be cheap, small enough to keep memory flat
    for (let i = 0; i < rows.length; i += 2000) yield `${rows.slice(i, i + 2000).join('\n')}\n`;
  }
  await pipeline(Readable.from(blocks()), stream);
}

async function writeChunk(c: pg.ClientBase, chunk: Chunk, rows: ChunkRows, marker: Marker): Promise<void> {
  await c.query('begin');
  try {
    await copyRows(c, 'entities', rows.entities);
    await copyRows(c, 'events', rows.events);
    await copyRows(c, 'jobs', rows.jobs);
    await copyRows(c, 'job_runs', rows.runs);
    await c.query(LOAD_SQL.statusRows, [chunk.entities.map((e) => e.id)]);
    await c.query(LOAD_SQL.saveMarker, [JSON.stringify(marker)]);
    await c.query('commit');
  } catch (e) {
    await c.query('rollback').catch(() => {});
    throw e;
  }
}

export async function load(
  pool: pg.Pool,
  url: string,
  o: LoadOptions,
  opts: { resume?: boolean; progress?: LoadProgress; pipeline?: string } = {},
): Promise<LoadSummary> {
  const started = Date.now();
  const { pipeline, file } = await loadPipeline(opts.pipeline);
  const makeProofs = storyProofs(pipeline, file);
  const c = new pg.Client({ connectionString: url, application_name: 'canon load' });
  // a server that goes away mid-load must end in one line and a resumable marker, not a crash
  c.on('error', () => {});
  await c.connect();
  try {
    if (!(await c.query(LOAD_SQL.isSuperuser)).rows[0]?.rolsuper) {
      throw databaseError(
        'canon load needs a superuser connection: it bulk-loads with the ledger triggers bypassed (session_replication_role = replica) and writes the hash chains itself',
      );
    }
    const { marker, from } = await startingPoint(c, o, !!opts.resume);
    await syncPipeline(pool, pipeline);
    const creator = (await c.query(LOAD_SQL.currentUser)).rows[0].name as string;
    await c.query(LOAD_SQL.eventPartitions, [marker.now_us, o.days]);
    await c.query(LOAD_SQL.bypassTriggers);
    const plan = chunkPlan(o);
    const cx = storyContext(o, marker.now_us, creator, makeProofs());
    const mix: Record<string, number> = {};
    const earlier = marker.seconds; // spent by the runs this one resumes
    let offsets = (await c.query(LOAD_SQL.maxima)).rows[0] as { position: number; job: number; run: number };
    offsets = { position: Number(offsets.position), job: Number(offsets.job), run: Number(offsets.run) };
    let events = 0;
    for (let i = from; i < plan.chunks; i++) {
      const { first, count } = plan.entities(i);
      const plans = planChunk(new Rng(o.seed, 'chunk', i), first, count, plan.budget(i), plan.fates(i), (index) =>
        Math.min(1, ((1 - (index + 0.5) / o.entities) * o.days) / ACTIVE_DAYS),
      );
      const chunk = buildChunk(cx, plans);
      const rows = chunkRows(chunk, offsets, creator);
      marker.chunks_done = i + 1;
      marker.seconds = earlier + (Date.now() - started) / 1000;
      await writeChunk(c, chunk, rows, marker);
      offsets = rows.next;
      events += chunk.events.length;
      for (const [k, v] of Object.entries(chunk.counts)) mix[k] = (mix[k] ?? 0) + v;
      opts.progress?.chunk(i + 1, plan.chunks, events);
    }
    const rowsSeconds = (Date.now() - started) / 1000;
    opts.progress?.phase('sequences, workers and statistics (ANALYZE)');
    await c.query(LOAD_SQL.setSequences);
    const oldest = new Date(marker.now_us / 1000 - o.days * 86_400_000);
    await c.query(LOAD_SQL.workers, [cx.workers, oldest, new Date(marker.now_us / 1000)]);
    const a0 = Date.now();
    await c.query(LOAD_SQL.analyze);
    const analyzeSeconds = (Date.now() - a0) / 1000;
    const counts = (await c.query(LOAD_SQL.counts)).rows[0];
    const total = (Date.now() - started) / 1000;
    await c.query(LOAD_SQL.saveMarker, [JSON.stringify({ ...marker, status: 'complete', seconds: earlier + total })]);
    return {
      options: o,
      resumed_from_chunk: from,
      chunks: plan.chunks,
      counts: {
        entities: Number(counts.entities),
        events: Number(counts.events),
        jobs: Number(counts.jobs),
        runs: Number(counts.runs),
      },
      mix,
      seconds: {
        total: Number(total.toFixed(1)),
        rows: Number(rowsSeconds.toFixed(1)),
        analyze: Number(analyzeSeconds.toFixed(1)),
        including_resumed_runs: Number((earlier + total).toFixed(1)),
      },
    };
  } catch (e) {
    if (e instanceof CanonError) throw e;
    throw new CanonError(
      `canon load failed: ${(e as Error).message.split('\n')[0]} (what was committed stays: run again with --resume)`,
      EXIT.FAILURE,
    );
  } finally {
    await c.end().catch(() => {});
  }
}
