// The top bar (status, database, refresh age, connection), the bottom bar (keys, prompts,
// the result of the last action) and the help screen.
import { Box, Text } from 'ink';
import { fmtAge, oneLine } from '../format.js';
import { KEYS } from '../keys.js';
import type { WatchSnapshot } from '../snapshot.js';
import { Line, severityColor } from './common.js';

export interface Connection {
  ok: boolean;
  /** when the first failed refresh of the current outage happened (ms) */
  since?: number;
  error?: string;
}

export function TopBar({
  snap,
  cols,
  now,
  paused,
  conn,
  title,
}: {
  snap: WatchSnapshot | null;
  cols: number;
  now: number;
  paused: boolean;
  conn: Connection;
  title: string;
}) {
  const h = snap?.health;
  const status = h?.status;
  const age = snap ? fmtAge(Math.max(0, (now - Date.parse(snap.fetched_at)) / 1000)) : '—';
  return (
    <Line width={cols}>
      <Text bold>{'canon watch '}</Text>
      {status ? (
        <Text bold color={status === 'OK' ? 'green' : severityColor(status === 'CRITICAL' ? 'critical' : 'warning')}>
          {`● ${status}`}
        </Text>
      ) : null}
      {!conn.ok ? (
        <Text
          bold
          color="red"
        >{`  ${conn.error ? 'refresh failed' : 'disconnected'}, retrying${conn.since ? ` (${fmtAge((now - conn.since) / 1000)})` : ''}`}</Text>
      ) : null}
      {paused ? (
        <Text bold color="yellow">
          {'  PAUSED'}
        </Text>
      ) : null}
      <Text>{`  ${title}`}</Text>
      {h ? (
        <Text>{`  workers ${h.workers.alive}  updated ${age} ago  gateway ${h.gateway.mode}  ${h.runtime_version}`}</Text>
      ) : (
        <Text dimColor>{'  loading…'}</Text>
      )}
      {h?.replica ? (
        // read from a standby (--read-url): everything on screen is as old as this
        <Text
          bold
        >{`  replica lag ${h.replica.lag_seconds === null ? 'unknown' : fmtAge(h.replica.lag_seconds)}`}</Text>
      ) : null}
      {snap ? <Text dimColor>{`  ${snap.database}  ${snap.query_ms}ms`}</Text> : null}
    </Line>
  );
}

export type Prompt =
  | { kind: 'confirm'; text: string }
  | { kind: 'search'; text: string }
  | { kind: 'busy'; text: string };

export function BottomBar({
  cols,
  prompt,
  message,
  hints,
}: {
  cols: number;
  prompt: Prompt | null;
  message: { text: string; error: boolean } | null;
  hints: string;
}) {
  if (prompt?.kind === 'confirm')
    return (
      <Line width={cols} color="yellow" bold>
        {`${prompt.text} [y/N] `}
      </Line>
    );
  if (prompt?.kind === 'search')
    return (
      <Line width={cols}>
        <Text color="cyan">{'find entity: '}</Text>
        {prompt.text}
        <Text inverse> </Text>
        <Text dimColor>{'  Enter to open its trace, Esc to cancel'}</Text>
      </Line>
    );
  if (prompt?.kind === 'busy') return <Line width={cols} color="yellow">{`${prompt.text}…`}</Line>;
  return (
    <Line width={cols}>
      {message ? <Text color={message.error ? 'red' : 'green'}>{`${oneLine(message.text, 300)}  `}</Text> : null}
      <Text dimColor>{hints}</Text>
    </Line>
  );
}

export function Help({
  cols,
  rows,
  readonly,
  interval,
}: {
  cols: number;
  rows: number;
  readonly: boolean;
  interval: number;
}) {
  const lines = [
    ...KEYS.map(([k, v]) => `  ${k.padEnd(10)} ${v}`),
    '',
    `  Actions ask y/N first${readonly ? '; this session is --readonly: they are refused' : ''}. Refresh every ${interval}s, one query each.`,
    '  Tiles turn yellow or red when the alert that watches them fires (same thresholds as canon health).',
    '  Any key closes this help.',
  ];
  return (
    <Box flexDirection="column" width={cols}>
      <Line width={cols} bold>
        {'KEYS'}
      </Line>
      {lines.slice(0, Math.max(0, rows - 1)).map((l, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: a line of help is its position
        <Line key={i} width={cols}>
          {l}
        </Line>
      ))}
    </Box>
  );
}
