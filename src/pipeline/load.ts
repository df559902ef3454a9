// Loading the user's pipeline module (--pipeline PATH or CANON_PIPELINE; the example pipeline
// otherwise) from any folder, with or without a package.json. JavaScript is imported as Node
// runs it; TypeScript through tsx, so a team can point canon at its source file. Every
// failure is one line naming the file and, for a module of the wrong shape, the field.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { usageError } from '../errors.js';
import { packageRoot } from '../paths.js';
import { type Pipeline, pipelineSchema } from './define.js';

export const EXAMPLE_PIPELINE = path.join(packageRoot, 'dist', 'pipelines', 'example', 'index.js');

const TYPESCRIPT = /\.(c|m)?tsx?$/;
const JAVASCRIPT = /\.(c|m)?js$/;

export interface LoadedPipeline {
  pipeline: Pipeline;
  file: string;
}

export function pipelinePath(opt?: string): string {
  return path.resolve(opt ?? process.env.CANON_PIPELINE ?? EXAMPLE_PIPELINE);
}

export async function loadPipeline(opt?: string): Promise<LoadedPipeline> {
  const file = pipelinePath(opt);
  const shown = path.relative(process.cwd(), file) || file;
  if (!fs.existsSync(file))
    throw usageError(`pipeline ${shown}: file not found (pass --pipeline PATH or set CANON_PIPELINE)`);
  if (!TYPESCRIPT.test(file) && !JAVASCRIPT.test(file))
    throw usageError(`pipeline ${shown}: not a JavaScript or TypeScript module (.ts, .mts, .cts, .js, .mjs, .cjs)`);
  let ns: Record<string, unknown>;
  try {
    ns = await importModule(file);
  } catch (e) {
    throw usageError(`pipeline ${shown}: failed to load: ${loadFailure(e, file, shown)}`);
  }
  const candidate = exportedPipeline(ns);
  if (candidate === undefined)
    throw usageError(
      `pipeline ${shown}: no default export and no export named "pipeline" (export default definePipeline({...}))`,
    );
  return { pipeline: validatePipeline(candidate, `pipeline ${shown}`), file };
}

/** Checks a pipeline given as a value (a module's export, or an object passed to the library); one line naming the field. */
export function validatePipeline(candidate: unknown, label: string): Pipeline {
  const parsed = pipelineSchema.safeParse(candidate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.map(String).join('.') || '(module)';
    throw usageError(`${label}: ${field}: ${issue.message}`);
  }
  return candidate as Pipeline;
}

/**
 * TypeScript through tsx's `tsImport`. JavaScript natively; a `.js` in ESM syntax that this
 * Node reads as CommonJS (no "type": "module" above it, and a Node without syntax detection)
 * goes through tsx too, which runs it either way.
 */
async function importModule(file: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(file).href;
  const viaTsx = async () => {
    const { tsImport } = await import('tsx/esm/api');
    return (await tsImport(url, import.meta.url)) as Record<string, unknown>;
  };
  if (TYPESCRIPT.test(file)) return viaTsx();
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (e) {
    if (/\.js$/.test(file) && isModuleSyntaxInCommonJs(e)) return viaTsx();
    throw e;
  }
}

function isModuleSyntaxInCommonJs(e: unknown): boolean {
  return (
    e instanceof SyntaxError &&
    /Cannot use import statement outside a module|Unexpected token 'export'|import\.meta/.test(e.message)
  );
}

/**
 * The pipeline a module exports: its default export, else its export named `pipeline`. A
 * module that ran as CommonJS (tsx compiles ESM syntax to CommonJS where no "type": "module"
 * applies) has `module.exports` as its namespace's default, holding `default` or `pipeline`
 * in turn; that object is unwrapped, so every way of writing the module gives the same result.
 */
export function exportedPipeline(ns: Record<string, unknown>): unknown {
  let exports = ns;
  for (;;) {
    const d = exports.default as Record<string, unknown> | undefined;
    const moduleExports = d !== null && typeof d === 'object' && !('name' in d) && ('default' in d || 'pipeline' in d);
    if (!moduleExports) break;
    exports = d;
  }
  return exports.default ?? exports.pipeline;
}

/** Why a module did not load, in one line: esbuild's first error with its place, or the error's first line. */
function loadFailure(e: unknown, file: string, shown: string): string {
  if (!(e instanceof Error)) return String(e);
  const lines = e.message.split('\n');
  // tsx (esbuild): "Transform failed with 1 error:\n/abs/file.ts:2:11: ERROR: Unexpected ","'"
  if (/^Transform failed/.test(lines[0]) && lines[1]) return lines[1].replace(file, shown).replace(' ERROR:', '');
  const missing = /^Cannot find (?:package|module) '([^']+)'/.exec(lines[0]);
  if (missing && (missing[1] === 'canon' || missing[1].startsWith('canon/')))
    return `${lines[0].replace(file, shown)} (install canon in the module's project: npm install canon)`;
  return lines[0].replace(file, shown);
}
