// The live dashboard: a stack of views, one snapshot per refresh for the view on top, keys
// in the k9s / asynq dash convention, and actions confirmed with y/N. The frame is always
// exactly rows-1 tall: Ink redraws in place only while the output is shorter than the
// terminal, and clears the whole screen (flicker) once it is not.

import type { ChalkInstance } from 'chalk';
import { Box, type Key, useApp, useInput, useStdin, useStdout } from 'ink';
import type React from 'react';
import { useCallback, useEffect, useRef, useState } from 'react';
import { coerceError, isConnectionError } from '../errors.js';
import { BottomBar, type Connection, Help, type Prompt, TopBar } from './components/Chrome.js';
import { Column, Line } from './components/common.js';
import { EntityView, JobView, TypeView } from './components/Detail.js';
import { Overview } from './components/Overview.js';
import { focusOf, type Item, itemsOf, jobOf, sameFocus, snapshotFits, typeOf, type View } from './items.js';
import { MIN_COLS, MIN_ROWS } from './layout.js';
import type { WatchSnapshot } from './snapshot.js';
import type { Prepared, WatchAction, WatchSource } from './source.js';

export interface AppProps {
  source: WatchSource;
  /** seconds between refreshes */
  interval: number;
  readonly: boolean;
  /** colours for the trace rows (Ink colours the rest itself) */
  c: ChalkInstance;
  /** a fixed size (tests); without it the terminal's, following resizes */
  size?: { cols: number; rows: number };
  initial?: View;
}

function useTerminalSize(fixed?: { cols: number; rows: number }) {
  const { stdout } = useStdout();
  const read = () => ({ cols: stdout.columns || 80, rows: stdout.rows || 24 });
  const [size, setSize] = useState(read);
  // biome-ignore lint/correctness/useExhaustiveDependencies: read is remade each render and reads only stdout
  useEffect(() => {
    if (fixed) return;
    const onResize = () => setSize(read());
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout, fixed]);
  return fixed ?? size;
}

const HINTS: Record<View['kind'], string> = {
  overview:
    '↑↓ move · Enter open · r retry · R retry type · P pause type · K kill flag · / find · p pause · ? help · q quit',
  type: '↑↓ move · Enter job · r retry · c cancel · R retry all dead · P pause type · Esc back · ? help · q quit',
  job: 'r retry · c cancel · ↑↓ trace · Enter open job · Esc back · / find · ? help · q quit',
  entity: '↑↓ move · Enter open job · r retry · c cancel · Esc back · / find · ? help · q quit',
};

/**
 * State that key handlers read and write: the ref changes at once, the render follows. Keys
 * can arrive faster than React renders (a loaded machine, tmux send-keys, a fast typist), and
 * a handler that read the last render's values would move from a stale cursor.
 */
function useLatest<T>(initial: T) {
  const [value, setValue] = useState(initial);
  const ref = useRef(value);
  const set = useCallback((next: T | ((prev: T) => T)) => {
    ref.current = typeof next === 'function' ? (next as (prev: T) => T)(ref.current) : next;
    setValue(ref.current);
  }, []);
  return [value, set, ref] as const;
}

const clamp = (n: number, len: number) => Math.max(0, Math.min(n, len - 1));

const title = (v: View) =>
  v.kind === 'overview'
    ? 'overview'
    : v.kind === 'type'
      ? `type ${v.type}`
      : v.kind === 'job'
        ? `job #${v.jobId}`
        : `entity ${v.entity}`;

export function App({ source, interval, readonly, c, size, initial }: AppProps) {
  const { exit } = useApp();
  const { isRawModeSupported } = useStdin();
  const { cols, rows } = useTerminalSize(size);
  const [stack, setStack, stackRef] = useLatest<View[]>([initial ?? { kind: 'overview', cursor: 0 }]);
  const [snap, setSnap, snapRef] = useLatest<WatchSnapshot | null>(null);
  const [conn, setConn] = useState<Connection>({ ok: true });
  const [paused, setPaused, pausedRef] = useLatest(false);
  const [help, setHelp, helpRef] = useLatest(false);
  const [prompt, setPrompt, promptRef] = useLatest<Prompt | null>(null);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const [now, setNow] = useState(Date.now());
  const pending = useRef<Prepared | null>(null);
  const view = stack[stack.length - 1];
  const focus = focusOf(view);
  const focusKey = JSON.stringify(focus);
  const focusNow = () => focusOf(stackRef.current[stackRef.current.length - 1]);
  const inflight = useRef(false);
  const again = useRef(false);
  const alive = useRef(true);

  useEffect(
    () => () => {
      alive.current = false;
    },
    [],
  );

  // One refresh at a time; a move to another view during a refresh asks for one more at once.
  // biome-ignore lint/correctness/useExhaustiveDependencies: focusNow reads refs, always the current view
  const refresh = useCallback(async () => {
    if (pausedRef.current) return; // a refresh asked for just before `p` does not run after it
    if (inflight.current) {
      again.current = true;
      return;
    }
    inflight.current = true;
    const asked = focusNow();
    try {
      const s = await source.snapshot(asked);
      if (!alive.current) return;
      setSnap(s);
      setConn({ ok: true });
    } catch (e) {
      if (!alive.current) return;
      const err = coerceError(e);
      setConn((c0) => ({
        ok: false,
        since: c0.ok ? Date.now() : c0.since,
        error: isConnectionError(e) ? undefined : err.message,
      }));
    } finally {
      inflight.current = false;
      if (alive.current && (again.current || !sameFocus(asked, focusNow()))) {
        again.current = false;
        void refresh();
      }
    }
  }, [source, setSnap, pausedRef]);

  // biome-ignore lint/correctness/useExhaustiveDependencies: a new focus refreshes at once and restarts the timer
  useEffect(() => {
    if (paused) return;
    void refresh();
    const t = setInterval(() => void refresh(), interval * 1000);
    return () => clearInterval(t);
  }, [paused, focusKey, interval, refresh]);

  // ages ("updated 3s ago", "disconnected (12s)") move on between refreshes
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new snapshot or connection state resets the clock of the ages
  useEffect(() => setNow(Date.now()), [snap, conn]);

  const bodyRows = rows - 3;
  const cursor = clamp(view.cursor, itemsOf(view, snap, c).length);
  const fits = snapshotFits(view, snap);

  /** What the keys act on, from the latest state (not this render's). */
  const here = () => {
    const v = stackRef.current[stackRef.current.length - 1];
    const s = snapRef.current;
    const items = itemsOf(v, s, c);
    const at = clamp(v.cursor, items.length);
    return { v, s, items, at, item: items[at] as Item | undefined, fits: snapshotFits(v, s) };
  };
  const moveTo = (n: (at: number, len: number) => number) => {
    const { items, at } = here();
    setStack((s) => [...s.slice(0, -1), { ...s[s.length - 1], cursor: clamp(n(at, items.length), items.length) }]);
  };
  const push = (v: View) => setStack((s) => [...s, v]);
  const pop = () => setStack((s) => (s.length > 1 ? s.slice(0, -1) : s));
  const say = (text: string, error = false) => setMessage({ text, error });

  const startAction = async (a: WatchAction) => {
    if (readonly) return say('read-only session (--readonly): actions are refused', true);
    setPrompt({ kind: 'busy', text: 'checking' });
    try {
      pending.current = await source.prepare(a);
      if (alive.current) setPrompt({ kind: 'confirm', text: pending.current.prompt });
    } catch (e) {
      setPrompt(null);
      say(coerceError(e).message, true);
    }
  };

  const confirm = async () => {
    const p = pending.current;
    pending.current = null;
    if (!p) return setPrompt(null);
    setPrompt({ kind: 'busy', text: 'working' });
    try {
      say(await p.run());
    } catch (e) {
      say(coerceError(e).message, true);
    } finally {
      setPrompt(null);
      void refresh();
    }
  };

  const act = (k: 'r' | 'c' | 'R' | 'P' | 'K') => {
    const { v: view, s: snap, item, fits } = here();
    if (!fits) return say('still loading this view', true);
    if (k === 'r' || k === 'c') {
      const job = jobOf(view, item, snap);
      if (!job) return say('select a job first (a failure, a job of a type, or a job row of a trace)', true);
      if (k === 'r' && !['failed', 'cancelled'].includes(job.status))
        return say(`job #${job.id} is ${job.status}: only dead (or cancelled) jobs can be retried`, true);
      if (k === 'r' && !job.dead && job.status === 'failed')
        return say(`job #${job.id} was already retried: act on the new job`, true);
      if (k === 'c' && !['queued', 'running', 'failed'].includes(job.status))
        return say(`job #${job.id} is ${job.status}: nothing to cancel`, true);
      return void startAction({ kind: k === 'r' ? 'retry' : 'cancel', job });
    }
    if (k === 'K') {
      if (item?.kind !== 'flag') return say('select a flag first (under FLAGS in the overview)', true);
      if (item.row.killed_at) return say(`${item.row.name} is already killed`, true);
      return void startAction({ kind: 'kill', flag: item.row.name });
    }
    const t = typeOf(view, item, snap);
    if (!t) return say('select a job type first', true);
    if (k === 'P') return void startAction({ kind: 'pause', type: t.name, pause: !t.paused });
    return void startAction({ kind: 'retry-type', type: t.name });
  };

  const drill = () => {
    const { v: view, item } = here();
    if (!item) return;
    if (item.kind === 'type') return push({ kind: 'type', type: item.row.name, cursor: 0 });
    if (item.kind === 'failure')
      return push({ kind: 'job', jobId: item.row.job_id, entity: item.row.entity_id, cursor: 0 });
    if (item.kind === 'job') return push({ kind: 'job', jobId: item.row.id, entity: item.row.entity_id, cursor: 0 });
    if (item.kind === 'trace' && item.job && !(view.kind === 'job' && view.jobId === item.job.id))
      return push({ kind: 'job', jobId: item.job.id, entity: item.job.entity_id, cursor: 0 });
    if (item.kind === 'flag') say(`K kills ${item.row.name}; other changes: canon flags --help`);
  };

  const onKey = (input: string, key: Key) => {
    if (key.ctrl && input === 'c') return exit();
    if (helpRef.current) return setHelp(false);
    const prompt = promptRef.current;
    if (prompt?.kind === 'busy') return;
    if (prompt?.kind === 'confirm') {
      if (input === 'y' || input === 'Y') return void confirm();
      pending.current = null;
      setPrompt(null);
      return say('cancelled: nothing changed');
    }
    if (prompt?.kind === 'search') {
      if (key.escape) return setPrompt(null);
      if (key.return) {
        const id = prompt.text.trim();
        setPrompt(null);
        if (id) push({ kind: 'entity', entity: id, cursor: 0 });
        return;
      }
      if (key.backspace || key.delete) return setPrompt({ ...prompt, text: prompt.text.slice(0, -1) });
      // entity ids have no spaces or control characters (canon's own rule, args.ts)
      const typed = input.replace(/[\s\u0000-\u001f\u007f]/g, '');
      if (typed && !key.ctrl && !key.meta) setPrompt({ ...prompt, text: (prompt.text + typed).slice(0, 200) });
      return;
    }
    setMessage(null);
    const page = Math.max(1, bodyRows - 3);
    if (input === 'q') return exit();
    if (input === '?') return setHelp(true);
    if (input === 'p') return setPaused((p) => !p);
    if (input === '/') return setPrompt({ kind: 'search', text: '' });
    if (key.escape || key.leftArrow) return pop();
    if (key.upArrow || input === 'k') return moveTo((at) => at - 1);
    if (key.downArrow || input === 'j') return moveTo((at) => at + 1);
    if (key.pageUp) return moveTo((at) => at - page);
    if (key.pageDown) return moveTo((at) => at + page);
    if (key.home || input === 'g') return moveTo(() => 0);
    if (key.end || input === 'G') return moveTo((_, len) => len - 1);
    if (key.return || key.rightArrow) return drill();
    if (input === 'r' || input === 'c' || input === 'R' || input === 'P' || input === 'K') return act(input);
  };
  // Keys go to the handler of the latest render (useInput re-subscribes only after React's
  // passive effects run), and that handler reads the state refs, not its render's values.
  const onKeyRef = useRef(onKey);
  onKeyRef.current = onKey;
  const handleKey = useCallback((input: string, key: Key) => onKeyRef.current(input, key), []);
  // Raw mode is what lets keys arrive one by one; without it (stdin not a terminal) the
  // dashboard still draws and Ctrl-C still ends it through the signal.
  useInput(handleKey, { isActive: isRawModeSupported === true });

  if (cols < MIN_COLS || rows < MIN_ROWS) {
    return (
      <Line width={Math.max(1, cols)}>{`too small: ${cols}×${rows}, needs ${MIN_COLS}×${MIN_ROWS} (q quits)`}</Line>
    );
  }

  let body: React.ReactNode;
  if (help) body = <Help cols={cols} rows={bodyRows} readonly={readonly} interval={interval} />;
  else if (!fits)
    body = (
      <Line width={cols} dim>
        {conn.ok ? 'loading…' : 'waiting for the database…'}
      </Line>
    );
  else if (view.kind === 'overview')
    body = <Overview snap={snap} cols={cols} rows={bodyRows} cursor={cursor} now={now} />;
  else if (view.kind === 'type') body = <TypeView snap={snap} cols={cols} rows={bodyRows} cursor={cursor} now={now} />;
  else if (view.kind === 'job')
    body = <JobView snap={snap} cols={cols} rows={bodyRows} cursor={cursor} now={now} c={c} jobId={view.jobId} />;
  else body = <EntityView snap={snap} cols={cols} rows={bodyRows} cursor={cursor} now={now} c={c} />;

  const hints = (readonly ? 'read-only · ' : '') + HINTS[view.kind];
  const failure = !conn.ok && conn.error ? { text: `refresh failed, retrying: ${conn.error}`, error: true } : null;
  return (
    <Box flexDirection="column" width={cols} height={rows - 1} overflow="hidden">
      <TopBar snap={snap} cols={cols} now={now} paused={paused} conn={conn} title={title(view)} />
      <Column width={cols} rows={bodyRows}>
        {body}
      </Column>
      <BottomBar cols={cols} prompt={prompt} message={message ?? failure} hints={hints} />
    </Box>
  );
}
