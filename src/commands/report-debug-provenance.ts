// `canon report:debug-provenance <file>`: checks every claim of a provenance file against the
// database now, with the seed's [PASS]/[FAIL] lines and, with --verbose, why each failed.
import fs from 'node:fs';
import { EXIT, usageError } from '../errors.js';
import { loadPipeline } from '../pipeline/load.js';
import { checkProvenance, renderResults } from '../proof/provenance.js';
import { type Provenance, provenanceSchema } from '../proof/provenance-format.js';
import { inSnapshot } from '../proof/snapshot.js';
import { zodProblem } from '../proof/zod-problem.js';
import { pipelineOption, readsOnly } from './shared/options.js';
import { examples, type Register } from './types.js';

const MAX_BYTES = 64 * 1024 * 1024;

export function readProvenanceFile(file: string): Provenance {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (st.isDirectory()) throw usageError(`${file} is a directory, not a provenance file`);
    if (st.size > MAX_BYTES)
      throw usageError(`${file} is ${st.size} bytes; a provenance file is at most ${MAX_BYTES} bytes`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as { exitCode?: number }).exitCode) throw e;
    throw usageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw usageError(`${file} is not JSON (${(e as Error).message.replace(/\s+/g, ' ').slice(0, 120)})`);
  }
  const parsed = provenanceSchema.safeParse(raw);
  if (!parsed.success) throw usageError(`${file} is not a provenance file: ${zodProblem(parsed.error)}`);
  return parsed.data;
}

export const register: Register = (program, run) => {
  readsOnly(program.command('report:debug-provenance'))
    .description('check every claim of a provenance file against the database now')
    .argument('<file>', 'a file written by canon report:provenance')
    .option('-v, --verbose', 'explain each failure: Expected, Actual, Mismatch')
    .addOption(pipelineOption())
    .addHelpText(
      'after',
      examples(
        'canon report:debug-provenance prov.json',
        'canon report:debug-provenance prov.json --verbose',
        'canon report:debug-provenance prov.json --json',
      ) +
        '\n\nClaims per entity: entity_id (status), ledger_head (hash and chain), run_id (each run), artifact_hash,' +
        '\ntimestamp_signature and anchor (inclusion proof). Exit 0 all pass, 1 a claim fails, 2 the file is not' +
        '\na valid provenance file (not JSON, wrong shape, unknown entity: one line names the field).' +
        "\nThe proofs are checked with the pipeline module's own checks (--pipeline; the example pipeline by default).",
    )
    .action(
      run(async (ctx, file: string, opts: { verbose?: boolean; pipeline?: string }) => {
        const prov = readProvenanceFile(file);
        const { proofs } = (await loadPipeline(opts.pipeline)).pipeline;
        const db = await ctx.readDb();
        const results = await inSnapshot(db.pool, (c) => checkProvenance(c, prov, proofs));
        const failed = results.filter((r) => !r.ok).length;
        const data = {
          ok: failed === 0,
          verification_snapshot_ts: prov.verification_snapshot_ts,
          claims: results.length,
          passed: results.length - failed,
          failed,
          results,
        };
        ctx.print(
          data,
          (d) =>
            `${renderResults(d.results, !!opts.verbose, ctx.c)}\n${d.claims} claims: ${d.passed} passed, ${d.failed} failed (snapshot ${d.verification_snapshot_ts})`,
        );
        return failed ? EXIT.FAILURE : EXIT.OK;
      }),
    );
};
