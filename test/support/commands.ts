// Every command of the binary, read from `canon --help` recursively (so a command added later
// is covered without touching the tests), with arguments that reach its real work.
import { runBatch } from './batch.js';

export interface CommandSpec {
  path: string[];
  usage: string;
  help: string;
  /** placeholders of the usage line: <required> */
  required: string[];
  hasSubcommands: boolean;
}

const names = (help: string) => {
  const section = help.split('\nCommands:\n')[1]?.split('\n\n')[0] ?? '';
  return [...section.matchAll(/^ {2}([a-z][\w:-]*)/gm)].map((m) => m[1]).filter((n) => n !== 'help');
};

/** Reads `--help` level by level (one batch per level). */
export async function listCommands(): Promise<CommandSpec[]> {
  const out: CommandSpec[] = [];
  let level: string[][] = [[]];
  while (level.length > 0) {
    const helps = await runBatch(level.map((p) => ({ args: [...p, '--help'] })));
    const next: string[][] = [];
    level.forEach((p, i) => {
      const h = helps[i].stdout;
      const usage = h.match(/^Usage: (.*)$/m)?.[1] ?? '';
      const subs = names(h);
      if (p.length > 0) {
        const args = usage.replace(/^canon\s+/, '').replace(/\[options\]|\[command\]/g, '');
        out.push({
          path: p,
          usage,
          help: h,
          required: [...args.matchAll(/<([^>]+)>/g)].map((m) => m[1]),
          hasSubcommands: subs.length > 0,
        });
      }
      for (const s of subs) next.push([...p, s]);
    });
    level = next;
  }
  return out.sort((a, b) => a.path.join(' ').localeCompare(b.path.join(' ')));
}

/** Values that let each command do its real work (or fail on the database, not on its arguments). */
export function argsFor(c: CommandSpec, o: { entity: string; file: () => string }): string[] {
  const key = c.path.join(' ');
  const positional = c.required.map((p) => {
    if (/^entity_id|^id$/.test(p)) return o.entity;
    if (p === 'kind') return 'document.created';
    if (p === 'job_type') return 'tsa';
    if (p === 'flag') return key === 'flags create' ? `SEC_${Date.now().toString(36)}` : 'D1_RUN_TSA_ENABLED';
    if (p === 'file') return o.file();
    return 'x';
  });
  const extra: Record<string, string[]> = {
    work: ['--once'],
    'work decide': ['--once'],
    'work execute': ['--once'],
    tick: ['--max-jobs', '2'],
    demo: ['--documents', '2'],
    // a fresh folder beside the command's files each time: never the repository's pipelines/
    init: ['--dir', `${o.file()}-init-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`],
    load: ['--entities', '5', '--jobs', '10', '--runs', '10', '--events', '20'],
    watch: ['--once'],
    'flags rollout': ['50'],
    'jobs retry': ['--dry-run'],
    'jobs cancel': ['--dry-run'],
  };
  return [...c.path, ...positional, ...(extra[key] ?? [])];
}
