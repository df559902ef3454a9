// The module boundaries, checked on every `npm test` (CI runs it): no import cycle among the
// files under src/, nothing under src/ imports pipelines/ (a pipeline reaches canon only
// through its module, loaded at run time), and no import runs up a layer. The imports are
// read with a small lexer (static `import … from`, `export … from`, side-effect imports and
// `import('…')` with a literal string), so comments, strings and templates cannot fool it, and
// relative specifiers are resolved to files the way NodeNext resolves them (`./x.js` is
// `./x.ts` or `./x.tsx` in the sources). Type-only imports count: a reader follows them too.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');

/**
 * The layers of src/, top first; a module may import its own layer and the ones below it.
 * A file belongs to the entry with the longest matching prefix (paths relative to the root).
 */
const LAYERS: { name: string; prefixes: string[] }[] = [
  // the binary, and the library's public surface (`canon`; `canon/testing` is src/testing/index.ts)
  { name: 'entry points', prefixes: ['src/cli.ts', 'src/index.ts'] },
  { name: 'commands', prefixes: ['src/commands/'] },
  { name: "the commands' shared pieces", prefixes: ['src/commands/shared/', 'src/commands/types.ts'] },
  { name: 'interfaces (dashboard, HTTP)', prefixes: ['src/tui/', 'src/serve/'] },
  {
    name: 'features',
    prefixes: ['src/engine/', 'src/load/', 'src/observe/', 'src/proof/', 'src/retention/', 'src/testing/'],
  },
  { name: 'steering', prefixes: ['src/steering/'] },
  {
    name: 'core',
    prefixes: ['src/context', 'src/contracts', 'src/pipeline/', 'src/audit', 'src/ledger', 'src/migrate'],
  },
  {
    name: 'base (SQL text, connections, formats, errors)',
    prefixes: [
      'src/sql/',
      'src/db/',
      'src/args',
      'src/errors',
      'src/paths',
      'src/progress',
      'src/format',
      'src/proof/provenance-format.ts',
    ],
  },
];

/** Command modules that may import other command modules: they register them. */
const REGISTRIES: Record<string, string> = {
  'src/commands/index.ts': 'lists every command, in the order of canon --help',
  'src/commands/jobs.ts': 'hangs retry, cancel, pause and resume off canon jobs',
};

interface Import {
  from: string;
  spec: string;
  line: number;
  /** the file it names, relative to the root; undefined for a package */
  to?: string;
}

const KEYWORDS_BEFORE_EXPRESSION = new Set([
  'return',
  'typeof',
  'case',
  'do',
  'else',
  'in',
  'of',
  'new',
  'delete',
  'void',
  'throw',
  'instanceof',
  'yield',
  'await',
]);

type Token = { kind: 'word' | 'string' | 'template' | 'punct'; value: string; line: number };

/** Words, string literals, templates and punctuation, without comments; good enough for import statements. */
function tokens(src: string): Token[] {
  const out: Token[] = [];
  const holes: number[] = []; // brace depth at which each open `${` of a template closes
  let depth = 0;
  let line = 1;
  let i = 0;
  const push = (kind: Token['kind'], value: string) => out.push({ kind, value, line });
  const regexAllowed = () => {
    const p = out.at(-1);
    if (!p) return true;
    if (p.kind === 'word') return KEYWORDS_BEFORE_EXPRESSION.has(p.value);
    if (p.kind !== 'punct') return false;
    return !(p.value === ')' || p.value === ']' || p.value === '}');
  };
  /** Reads template text from i (after ` or the } that closes a hole) to its end or its next `${`. */
  const templateText = () => {
    while (i < src.length) {
      const c = src[i];
      if (c === '\\') i += 2;
      else if (c === '`') {
        i++;
        push('template', '');
        return;
      } else if (c === '$' && src[i + 1] === '{') {
        i += 2;
        holes.push(depth);
        return;
      } else {
        if (c === '\n') line++;
        i++;
      }
    }
  };
  while (i < src.length) {
    const c = src[i];
    if (c === '\n') {
      line++;
      i++;
    } else if (/\s/.test(c)) i++;
    else if (c === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? src.length : end + 2;
      line += src.slice(i, stop).split('\n').length - 1;
      i = stop;
    } else if (c === '"' || c === "'") {
      // a string ends at its quote or, unterminated (an apostrophe in JSX text), at the line's end
      let j = i + 1;
      let value = '';
      while (j < src.length && src[j] !== c && src[j] !== '\n') {
        if (src[j] === '\\') j++;
        value += src[j];
        j++;
      }
      push('string', value);
      i = src[j] === c ? j + 1 : j;
    } else if (c === '`') {
      i++;
      templateText();
    } else if (c === '}' && holes.length && holes[holes.length - 1] === depth) {
      holes.pop();
      i++;
      templateText();
    } else if (c === '/' && regexAllowed()) {
      let j = i + 1;
      let inClass = false;
      while (j < src.length && src[j] !== '\n' && (inClass || src[j] !== '/')) {
        if (src[j] === '\\') j++;
        else if (src[j] === '[') inClass = true;
        else if (src[j] === ']') inClass = false;
        j++;
      }
      i = j + 1;
      while (/[a-z]/i.test(src[i] ?? '')) i++;
      push('punct', '/regex/');
    } else if (/[A-Za-z_$0-9]/.test(c)) {
      let j = i;
      while (j < src.length && /[A-Za-z_$0-9]/.test(src[j])) j++;
      push('word', src.slice(i, j));
      i = j;
    } else {
      if (c === '{') depth++;
      if (c === '}') depth--;
      push('punct', c);
      i++;
    }
  }
  return out;
}

/** The module specifiers a file imports or re-exports, with their lines. */
function importsOf(src: string): { spec: string; line: number }[] {
  const t = tokens(src);
  const found: { spec: string; line: number }[] = [];
  const at = (k: number) => t[k] as Token | undefined;
  const fromClause = (k: number) => {
    if (at(k)?.kind === 'word' && at(k)?.value === 'from' && at(k + 1)?.kind === 'string')
      found.push({ spec: t[k + 1].value, line: t[k + 1].line });
  };
  for (let k = 0; k < t.length; k++) {
    const tok = t[k];
    if (tok.kind !== 'word' || at(k - 1)?.value === '.') continue;
    if (tok.value === 'import') {
      const next = at(k + 1);
      if (next?.value === '(') {
        if (at(k + 2)?.kind === 'string' && at(k + 3)?.value === ')')
          found.push({ spec: t[k + 2].value, line: t[k + 2].line });
      } else if (next?.kind === 'string') found.push({ spec: next.value, line: next.line });
      else {
        // the import clause: names, braces, commas, `* as`, `type`; then `from '…'`
        let j = k + 1;
        while (
          at(j) &&
          (at(j)!.kind === 'word' ? at(j)!.value !== 'from' : ['{', '}', ',', '*'].includes(at(j)!.value))
        )
          j++;
        fromClause(j);
      }
    } else if (tok.value === 'export') {
      let j = k + 1;
      if (at(j)?.value === 'type') j++;
      if (at(j)?.value === '*') {
        j++;
        if (at(j)?.value === 'as') j += 2;
        fromClause(j);
      } else if (at(j)?.value === '{') {
        while (at(j) && at(j)!.value !== '}') j++;
        fromClause(j + 1);
      }
    }
  }
  return found;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** `./x.js` from a source file is `./x.ts` or `./x.tsx`; a directory is its index. */
function resolveRelative(fromFile: string, spec: string): string {
  const base = path.resolve(path.dirname(fromFile), spec);
  const stem = base.replace(/\.(m|c)?jsx?$/, '');
  const candidates = [`${stem}.ts`, `${stem}.tsx`, base, path.join(base, 'index.ts'), path.join(base, 'index.tsx')];
  const hit = candidates.find((c) => fs.existsSync(c) && fs.statSync(c).isFile()) ?? base;
  return path.relative(root, hit).split(path.sep).join('/');
}

function readGraph(): { files: string[]; imports: Import[] } {
  const files = sourceFiles(path.join(root, 'src')).map((f) => path.relative(root, f).split(path.sep).join('/'));
  const imports = files.flatMap((from) =>
    importsOf(fs.readFileSync(path.join(root, from), 'utf8')).map(({ spec, line }) => ({
      from,
      spec,
      line,
      to: spec.startsWith('.') ? resolveRelative(path.join(root, from), spec) : undefined,
    })),
  );
  return { files, imports };
}

/** Every cycle's strongly connected component (Tarjan), each as one cycle through it. */
function cycles(files: string[], imports: Import[]): string[][] {
  const edges = new Map<string, Set<string>>(files.map((f) => [f, new Set()]));
  for (const i of imports) if (i.to && edges.has(i.to)) edges.get(i.from)!.add(i.to);
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || edges.get(v)!.has(v)) components.push(c);
    }
  };
  for (const f of files) if (!index.has(f)) visit(f);
  // one concrete cycle per component: the shortest path from its first file back to itself
  return components.map((c) => {
    const inside = new Set(c);
    const start = [...c].sort()[0];
    const prev = new Map<string, string>();
    const queue = [start];
    while (queue.length) {
      const v = queue.shift()!;
      for (const w of edges.get(v)!) {
        if (!inside.has(w) || prev.has(w)) continue;
        prev.set(w, v);
        if (w === start) queue.length = 0;
        else queue.push(w);
      }
    }
    const between: string[] = [];
    for (let v = prev.get(start)!; v !== start; v = prev.get(v)!) between.unshift(v);
    return [start, ...between, start];
  });
}

function layerOf(file: string): number | undefined {
  let best: { layer: number; length: number } | undefined;
  LAYERS.forEach((l, layer) => {
    for (const p of l.prefixes)
      if (file.startsWith(p) && (!best || p.length > best.length)) best = { layer, length: p.length };
  });
  return best?.layer;
}

const where = (i: Import) => `${i.from}:${i.line} imports '${i.spec}'`;

describe('module boundaries', () => {
  const { files, imports } = readGraph();

  it('reads the imports of every source file', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(imports.filter((i) => i.to).length).toBeGreaterThan(200);
    // the lexer sees through comments, strings and templates, and finds every form
    const sample = [
      "import a, { b, type C } from './a.js';",
      "import type {\n  D,\n} from '../d.js';",
      "export * from './e.js';",
      "export { f as g } from './f.js';",
      "export type { H } from './h.js';",
      "import './side-effect.js';",
      "const m = await import('./lazy.js');",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: source text with a template, for the lexer
      'const n = await import(`./${name}.js`); // not a literal: not an edge',
      "// import x from './commented.js';",
      "/* import y from './block.js'; */",
      'const s = "import z from \'./in-a-string.js\'";',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: source text with a template, for the lexer
      "const t = `select 1 ${x ? `import w from './nested.js'` : ''} from canon.events`;",
      "const r = /['\"]/g; import v from './after-regex.js';",
      'const q = import.meta.url;',
    ].join('\n');
    expect(importsOf(sample).map((i) => i.spec)).toEqual([
      './a.js',
      '../d.js',
      './e.js',
      './f.js',
      './h.js',
      './side-effect.js',
      './lazy.js',
      './after-regex.js',
    ]);
  });

  it('has no import cycle among the files under src/', () => {
    const found = cycles(files, imports).map((c) => c.join(' → '));
    expect(found, `import cycles:\n${found.join('\n')}`).toEqual([]);
  });

  it('never imports pipelines/ from src/ (a pipeline is loaded from its module at run time)', () => {
    const bad = imports.filter((i) => i.to?.startsWith('pipelines/') || /(^|\/)pipelines\//.test(i.spec)).map(where);
    expect(bad).toEqual([]);
  });

  it('assigns every file under src/ a layer', () => {
    expect(
      files
        .filter((f) => layerOf(f) === undefined)
        .map((f) => `${f}: give it a layer in LAYERS (test/boundaries.test.ts)`),
    ).toEqual([]);
  });

  it('never imports up a layer', () => {
    const up = imports
      .filter((i) => i.to?.startsWith('src/'))
      .filter((i) => {
        const [a, b] = [layerOf(i.from), layerOf(i.to!)];
        return a !== undefined && b !== undefined && b < a;
      })
      .map((i) => `${where(i)}: ${LAYERS[layerOf(i.from)!].name} must not import ${LAYERS[layerOf(i.to!)!].name}`);
    expect(up).toEqual([]);
  });

  it('has commands import other commands only to register them', () => {
    const isCommand = (f: string) =>
      f.startsWith('src/commands/') && layerOf(f) === LAYERS.findIndex((l) => l.name === 'commands');
    const bad = imports
      .filter((i) => isCommand(i.from) && i.to && isCommand(i.to) && !(i.from in REGISTRIES))
      .map((i) => `${where(i)}: share it through src/commands/shared/ instead`);
    expect(bad).toEqual([]);
  });
});
