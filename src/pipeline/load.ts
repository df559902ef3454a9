// Loading the user's pipeline module (--pipeline PATH or CANON_PIPELINE; the example pipeline
// otherwise). JavaScript modules are imported as they are; TypeScript ones through tsx, so a
// team can point canon at its source file. Every failure names the file and the field.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { usageError } from '../errors.js';
import { packageRoot } from '../paths.js';
import { type Pipeline, pipelineSchema } from './define.js';

export const EXAMPLE_PIPELINE = path.join(packageRoot, 'dist', 'pipelines', 'example', 'index.js');

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
  let mod: Record<string, unknown>;
  try {
    if (/\.(c|m)?tsx?$/.test(file)) {
      const { tsImport } = await import('tsx/esm/api');
      mod = (await tsImport(pathToFileURL(file).href, import.meta.url)) as Record<string, unknown>;
    } else {
      mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    }
  } catch (e) {
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw usageError(`pipeline ${shown}: failed to load: ${msg}`);
  }
  const candidate = (mod.default ?? mod.pipeline) as unknown;
  if (candidate === undefined)
    throw usageError(`pipeline ${shown}: no default export (export default definePipeline({...}))`);
  const parsed = pipelineSchema.safeParse(candidate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.map(String).join('.') || '(module)';
    throw usageError(`pipeline ${shown}: ${field}: ${issue.message}`);
  }
  return { pipeline: candidate as Pipeline, file };
}
