// The overview: KPI tiles, sparklines, firing alerts, job types, workers, recent failures,
// and steering (flags, open breakers, paused types). Fits 80×24 and uses more room when there
// is more: every section gets a row budget (layout.ts) and shows a window of its rows that
// keeps the cursor visible.

import { Box, Text } from 'ink';
import React from 'react';
import { ago, clock, fmtAge, oneLine, pad, padStart, pct, shortId, sparkline } from '../format.js';
import { allocate, listNeed, type SectionNeed, WIDE_COLS, windowStart } from '../layout.js';
import type { WatchSnapshot } from '../snapshot.js';
import { Column, Header, Line, severityColor } from './common.js';

export interface OverviewProps {
  snap: WatchSnapshot;
  cols: number;
  /** rows available; undefined = as many as the content needs (the plain snapshot) */
  rows?: number;
  /** index into overviewItems (types, then failures, then flags); -1 for none */
  cursor: number;
  now: number;
}

/** Each tile's colour is the severity of the alert that watches the same number, if it fires. */
const TILES: { label: string; alert?: string; value: (s: WatchSnapshot) => string }[] = [
  { label: 'lag', alert: 'CanonHighLag', value: (s) => fmtAge(s.health.estimated_lag_seconds) },
  { label: 'gap', alert: 'CanonEventToJobGap', value: (s) => String(s.health.event_to_job_gap) },
  { label: 'queued', alert: 'CanonQueueBacklog', value: (s) => String(s.health.jobs_queued.total) },
  { label: 'running', value: (s) => String(s.health.jobs_processing.count) },
  { label: 'stuck', alert: 'CanonStuckJobs', value: (s) => String(s.health.stuck_count) },
  { label: 'dead 24h', alert: 'CanonDeadJobs', value: (s) => String(s.health.dead_last_24h) },
  { label: 'success 1h', alert: 'CanonLowSuccessRate', value: (s) => pct(s.health.throughput.last_1h.success_rate) },
];

function Tiles({ snap, cols }: { snap: WatchSnapshot; cols: number }) {
  const w = Math.max(8, Math.floor(cols / TILES.length));
  const sev = (name?: string) => snap.health.problems.find((p) => p.alert === name)?.severity;
  return (
    <Box flexDirection="column" width={cols} height={2} overflow="hidden">
      <Line width={cols}>
        {TILES.map((t) => (
          <Text key={t.label} dimColor>
            {pad(t.label, w)}
          </Text>
        ))}
      </Line>
      <Line width={cols}>
        {TILES.map((t) => {
          const s = sev(t.alert);
          return (
            <Text key={t.label} bold color={severityColor(s) ?? (t.alert ? 'green' : undefined)}>
              {pad(t.value(snap), w)}
            </Text>
          );
        })}
      </Line>
    </Box>
  );
}

function Sparklines({ snap, cols, rows }: { snap: WatchSnapshot; cols: number; rows: number }) {
  const runs = snap.minutes.map((m) => m.ok + m.failed);
  const lags = snap.minutes.map((m) => m.lag);
  const last = <T,>(xs: T[]) => xs[xs.length - 1];
  const tp = (
    <>
      <Text dimColor>{'throughput '}</Text>
      <Text color="green">{sparkline(runs)}</Text>
      <Text>{` ${last(runs) ?? 0}/min peak ${Math.max(0, ...runs)}`}</Text>
    </>
  );
  const lag = (
    <>
      <Text dimColor>{rows === 1 ? '   lag ' : 'lag        '}</Text>
      <Text color="yellow">{sparkline(lags)}</Text>
      <Text>{` ${fmtAge(last(lags) ?? 0)} peak ${fmtAge(Math.max(0, ...lags))}`}</Text>
    </>
  );
  if (rows === 1)
    return (
      <Line width={cols}>
        {tp}
        {lag}
        <Text dimColor>{'  (last 30 min)'}</Text>
      </Line>
    );
  return (
    <Box flexDirection="column" width={cols} height={2} overflow="hidden">
      <Line width={cols}>
        {tp}
        <Text dimColor>{'  runs finished per minute, last 30 min'}</Text>
      </Line>
      <Line width={cols}>
        {lag}
        <Text dimColor>{'  longest wait for a worker per minute'}</Text>
      </Line>
    </Box>
  );
}

interface ListProps {
  snap: WatchSnapshot;
  width: number;
  rows: number;
  /** cursor relative to this list's first item (-1 when elsewhere) */
  cursor: number;
  now: number;
}

/** Header + a window of rows; `render` draws item i. */
function ListSection({
  title,
  note,
  n,
  rows,
  width,
  cursor,
  empty,
  render,
}: {
  title: string;
  note?: string;
  n: number;
  rows: number;
  width: number;
  cursor: number;
  empty: string;
  render: (i: number, selected: boolean) => React.ReactNode;
}) {
  if (rows <= 0) return null;
  const shown = Math.min(n, rows - 1);
  const start = windowStart(n, shown, cursor);
  const hidden = n - shown;
  return (
    <Box flexDirection="column" width={width}>
      <Header
        width={width}
        title={title}
        note={[note, hidden > 0 ? `${shown} of ${n} shown` : ''].filter(Boolean).join(' · ')}
      />
      {n === 0 && rows > 1 ? (
        <Line width={width} dim>
          {`  ${empty}`}
        </Line>
      ) : null}
      {Array.from({ length: shown }, (_, k) => start + k).map((i) => (
        <React.Fragment key={i}>{render(i, i === cursor)}</React.Fragment>
      ))}
    </Box>
  );
}

function Alerts({ snap, width, rows }: { snap: WatchSnapshot; width: number; rows: number }) {
  const p = snap.health.problems;
  if (rows <= 0) return null;
  if (p.length === 0)
    return (
      <Line width={width}>
        <Text bold color="cyan">
          ALERTS
        </Text>
        <Text color="green">{'  none firing'}</Text>
      </Line>
    );
  return (
    <ListSection
      title="ALERTS"
      note={`${p.length} firing`}
      n={p.length}
      rows={rows}
      width={width}
      cursor={-1}
      empty=""
      render={(i) => (
        <Line width={width} color={severityColor(p[i].severity)}>
          {`  ${p[i].severity === 'critical' ? 'CRITICAL' : 'WARNING '} ${p[i].alert}: ${p[i].summary} → ${p[i].runbook}`}
        </Line>
      )}
    />
  );
}

function Types({ snap, width, rows, cursor }: ListProps) {
  const t = snap.types;
  return (
    <ListSection
      title={`${pad('JOB TYPE', 13)}${pad('LANE', 6)}${padStart('QUEUED', 7)}${padStart('RUNNING', 8)}${padStart('DEAD 24H', 9)}  ${pad('OLDEST', 7)} STATE`}
      n={t.length}
      rows={rows}
      width={width}
      cursor={cursor}
      empty="no job types declared"
      render={(i, sel) => {
        const r = t[i];
        const state =
          [r.paused ? 'PAUSED' : '', r.breaker !== 'closed' ? `breaker ${r.breaker}` : ''].filter(Boolean).join(', ') ||
          'ok';
        return (
          <Line width={width} selectable selected={sel}>
            {`${pad(r.name, 11)}${pad(r.lane === 'decision' ? 'dec' : 'exec', 6)}${padStart(String(r.queued), 7)}${padStart(String(r.running), 8)}`}
            <Text color={r.dead_24h ? 'yellow' : undefined}>{padStart(String(r.dead_24h), 9)}</Text>
            {`  ${pad(r.oldest_ready === null ? '—' : fmtAge(r.oldest_ready), 7)} `}
            <Text color={state === 'ok' ? 'green' : 'yellow'}>{state}</Text>
          </Line>
        );
      }}
    />
  );
}

function Workers({ snap, width, rows, now }: ListProps) {
  const w = snap.workers;
  const alive = snap.health.workers.alive;
  return (
    <ListSection
      title="WORKERS"
      note={`${alive} alive${snap.health.workers.stale ? `, ${snap.health.workers.stale} stale` : ''}`}
      n={w.length}
      rows={rows}
      width={width}
      cursor={-1}
      empty="no worker is running (start one: canon work)"
      render={(i) => {
        const r = w[i];
        return (
          <Line width={width} color={r.alive ? undefined : 'yellow'}>
            {`  ${pad(shortId(r.id), 18)} ${pad(r.lanes.join('+'), 19)} ${padStart(`${r.in_flight}/${r.concurrency}`, 7)} in flight  hb ${pad(ago(r.heartbeat_at, now), 10)}${r.alive ? '' : ' STALE'}  ${r.pid ?? ''}${r.host ? `@${r.host}` : ''}`}
          </Line>
        );
      }}
    />
  );
}

/** What became of the job whose run failed: still dead, retried by an operator, retrying, or recovered. */
function failureState(r: WatchSnapshot['failures'][number]): [string, string | undefined] {
  if (r.dead) return ['DEAD', 'red'];
  if (r.job_status === 'failed') return ['retried', 'yellow'];
  if (r.job_status === 'succeeded') return ['recovered', 'green'];
  if (r.job_status === 'queued' || r.job_status === 'running') return ['retrying', 'yellow'];
  return [r.job_status, undefined];
}

function Failures({ snap, width, rows, cursor }: ListProps) {
  const f = snap.failures;
  return (
    <ListSection
      title="RECENT FAILURES"
      note="failed runs, newest first"
      n={f.length}
      rows={rows}
      width={width}
      cursor={cursor}
      empty="no failed run"
      render={(i, sel) => {
        const r = f[i];
        const [word, color] = failureState(r);
        return (
          <Line width={width} selectable selected={sel}>
            {`${clock(r.finished_at)} ${pad(r.type, 9)}`}
            <Text color={color}>{pad(word, 10)}</Text>
            {`#${pad(String(r.job_id), 7)}${pad(`${r.attempt}/${r.max_attempts}`, 5)} ${pad(r.entity_id, 14)} ${r.reason ?? '—'}: ${oneLine(r.error, 300)}  trace ${shortId(r.trace_id)}`}
          </Line>
        );
      }}
    />
  );
}

function Steering({ snap, width, rows, cursor, now }: ListProps) {
  const paused = snap.types.filter((t) => t.paused);
  const lines: React.ReactNode[] = [
    ...snap.flags.map((f, i) => {
      const state = f.killed_at
        ? 'KILLED'
        : !f.enabled
          ? 'off'
          : f.rollout_percent >= 100
            ? 'on'
            : `on ${f.rollout_percent}%`;
      const roll = f.rollout
        ? `  rollout ${f.rollout.current_percent}%→${f.rollout.until_percent}% +${f.rollout.step_percent}%/${fmtAge(f.rollout.every_seconds)}${f.rollout.guard ? ` guard ${f.rollout.guard}` : ''}`
        : '';
      return (
        <Line key={`f${f.name}`} width={width} selectable selected={i === cursor}>
          {`flag ${pad(f.name, 24)} `}
          <Text color={f.killed_at ? 'red' : f.enabled ? 'green' : undefined}>{pad(state, 8)}</Text>
          {`${f.held_jobs ? ` ${f.held_jobs} held` : ''}${roll}${f.killed_at ? `  killed by ${f.killed_by} ${ago(f.killed_at, now)}` : ''}`}
        </Line>
      );
    }),
    ...snap.breakers.map((b) => (
      <Line key={`b${b.job_type}`} width={width} color={b.state === 'open' ? 'red' : 'yellow'}>
        {`  breaker ${b.job_type} ${b.state.toUpperCase()}  ${b.failure_count} failures${b.state === 'open' ? `, probe after ${clock(b.next_attempt_at)}` : `, probe job #${b.probe_job_id}`}${b.reason ? `  ${oneLine(b.reason, 120)}` : ''}`}
      </Line>
    )),
    ...paused.map((t) => (
      <Line key={`p${t.name}`} width={width} color="yellow">
        {`  paused ${t.name} by ${t.paused_by ?? '?'} ${ago(t.paused_at, now)}${t.pause_reason ? ` "${oneLine(t.pause_reason, 80)}"` : ''} (${t.queued} queued)`}
      </Line>
    )),
  ];
  return (
    <ListSection
      title="FLAGS · BREAKERS · PAUSED"
      n={lines.length}
      rows={rows}
      width={width}
      cursor={cursor}
      empty="no flags, every breaker closed, nothing paused"
      render={(i) => lines[i]}
    />
  );
}

export function Overview({ snap, cols, rows, cursor, now }: OverviewProps) {
  const nT = snap.types.length;
  const nF = snap.failures.length;
  const rel = (from: number, n: number) => (cursor >= from && cursor < from + n ? cursor - from : -1);
  const cur = { types: rel(0, nT), failures: rel(nT, nF), steering: rel(nT + nF, snap.flags.length) };
  const steeringN = snap.flags.length + snap.breakers.length + snap.types.filter((t) => t.paused).length;
  const alertsNeed: SectionNeed = snap.health.problems.length
    ? listNeed('alerts', snap.health.problems.length, 2)
    : { key: 'alerts', min: 1, want: 1 };
  const wide = cols >= WIDE_COLS;
  const budget = rows ?? Number.MAX_SAFE_INTEGER;
  const top = allocate(budget, [
    { key: 'tiles', min: 2, want: 2 },
    { key: 'spark', min: wide ? 1 : 2, want: wide ? 1 : 2 },
  ]);
  const rest = budget - top.tiles - top.spark;
  const common = { snap, now };
  if (!wide) {
    const a = allocate(rest, [
      alertsNeed,
      listNeed('types', nT, 3),
      listNeed('failures', nF, 2),
      listNeed('workers', snap.workers.length, 1),
      listNeed('steering', steeringN, 1),
    ]);
    // the order on screen: what is wrong first, then where, then who and what is steered
    return (
      <Box flexDirection="column" width={cols}>
        {top.tiles ? <Tiles snap={snap} cols={cols} /> : null}
        {top.spark ? <Sparklines snap={snap} cols={cols} rows={top.spark} /> : null}
        <Alerts snap={snap} width={cols} rows={a.alerts} />
        <Types {...common} width={cols} rows={a.types} cursor={cur.types} />
        <Workers {...common} width={cols} rows={a.workers} cursor={-1} />
        <Failures {...common} width={cols} rows={a.failures} cursor={cur.failures} />
        <Steering {...common} width={cols} rows={a.steering} cursor={cur.steering} />
      </Box>
    );
  }
  const lw = Math.floor(cols * 0.45);
  const rw = cols - lw - 1;
  const left = allocate(rest, [listNeed('types', nT, 3), listNeed('workers', snap.workers.length, 1)]);
  const right = allocate(rest, [alertsNeed, listNeed('failures', nF, 2), listNeed('steering', steeringN, 1)]);
  const colRows = rows === undefined ? undefined : rest;
  const col = (w: number, children: React.ReactNode) =>
    colRows === undefined ? (
      <Box flexDirection="column" width={w}>
        {children}
      </Box>
    ) : (
      <Column width={w} rows={colRows}>
        {children}
      </Column>
    );
  return (
    <Box flexDirection="column" width={cols}>
      {top.tiles ? <Tiles snap={snap} cols={cols} /> : null}
      {top.spark ? <Sparklines snap={snap} cols={cols} rows={top.spark} /> : null}
      <Box flexDirection="row" width={cols}>
        {col(
          lw,
          <>
            <Types {...common} width={lw} rows={left.types} cursor={cur.types} />
            <Workers {...common} width={lw} rows={left.workers} cursor={-1} />
          </>,
        )}
        <Box width={1} />
        {col(
          rw,
          <>
            <Alerts snap={snap} width={rw} rows={right.alerts} />
            <Failures {...common} width={rw} rows={right.failures} cursor={cur.failures} />
            <Steering {...common} width={rw} rows={right.steering} cursor={cur.steering} />
          </>,
        )}
      </Box>
    </Box>
  );
}
