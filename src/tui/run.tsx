// Starting and ending the dashboard. Live: Ink on the alternate screen (as k9s, htop and less
// do), so quitting gives the terminal back exactly as it was; raw mode, the cursor and the
// screen are restored on every way out (q, Ctrl-C, SIGTERM, SIGHUP, a crash). Plain: the same
// overview rendered once to text, for pipes, CI logs and `--once`.
import { stripVTControlCharacters } from 'node:util';
import chalk, { type ChalkInstance } from 'chalk';
import { Box, render, renderToString } from 'ink';
import { App } from './App.js';
import { TopBar } from './components/Chrome.js';
import { Overview } from './components/Overview.js';
import type { WatchSnapshot } from './snapshot.js';
import type { WatchSource } from './source.js';

const ENTER_ALT = '\x1b[?1049h\x1b[H';
const LEAVE_ALT = '\x1b[?1049l';

/** When the live dashboard can run: a terminal on stdout, not CI, not --once or --json. */
export function canRunLive(
  stdout: NodeJS.WriteStream,
  env: NodeJS.ProcessEnv,
  opts: { once?: boolean; json?: boolean },
): boolean {
  return stdout.isTTY === true && !env.CI && !opts.once && !opts.json;
}

export async function runLive(
  source: WatchSource,
  o: { interval: number; readonly: boolean; c: ChalkInstance },
): Promise<void> {
  // Ink colours through the shared chalk, which knows nothing of NO_COLOR or --no-color
  if (o.c.level === 0) chalk.level = 0;
  const out = process.stdout;
  out.write(ENTER_ALT);
  let left = false;
  const leave = () => {
    if (left) return;
    left = true;
    out.write(LEAVE_ALT);
  };
  process.once('exit', leave);
  const app = render(<App source={source} interval={o.interval} readonly={o.readonly} c={o.c} />, {
    exitOnCtrlC: false, // Ctrl-C is a key like q (App), so the same clean exit runs
    maxFps: 10,
    // Ink 6.8's incrementalRendering moves the cursor up one line too few when the frame ends
    // in a newline, so a full-height frame crept down a line per refresh; the standard renderer
    // erases and redraws the frame in one write.
    incrementalRendering: false,
  });
  const stop = () => app.unmount();
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, stop);
  try {
    await app.waitUntilExit();
  } finally {
    for (const s of signals) process.off(s, stop);
    app.cleanup();
    leave();
    process.off('exit', leave);
  }
}

/** The overview as plain text (colour only when asked), one snapshot. */
export function plainSnapshot(snap: WatchSnapshot, cols: number, color: boolean): string {
  const now = Date.parse(snap.fetched_at);
  const text = renderToString(
    <Box flexDirection="column" width={cols}>
      <TopBar snap={snap} cols={cols} now={now} paused={false} conn={{ ok: true }} title="snapshot" />
      <Overview snap={snap} cols={cols} cursor={-1} now={now} />
    </Box>,
    { columns: cols },
  );
  const lines = (color ? text : stripVTControlCharacters(text)).split('\n').map((l) => l.replace(/\s+$/, ''));
  return lines.join('\n');
}
