// The drill-down views: one job type's jobs by state; one job (the dead-job detail: last
// error, every attempt, then its entity's trace); one entity's trace (`/`). The trace rows
// are `canon trace`'s own rendering.

import type { ChalkInstance } from 'chalk';
import { Box, Text } from 'ink';
import React from 'react';
import { ago, clock, fmtAge, oneLine, pad, plural, shortId, wrap } from '../format.js';
import { traceItems } from '../items.js';
import { windowStart } from '../layout.js';
import type { WatchSnapshot } from '../snapshot.js';
import { Header, Line } from './common.js';

interface DetailProps {
  snap: WatchSnapshot;
  cols: number;
  rows: number;
  cursor: number;
  now: number;
}

/** Rows [start, start+shown) of a scrolled list, keeping the cursor in view. */
function Scrolled({
  n,
  rows,
  cursor,
  render,
}: {
  n: number;
  rows: number;
  cursor: number;
  render: (i: number, selected: boolean) => React.ReactNode;
}) {
  if (rows <= 0) return null;
  const shown = Math.min(n, rows);
  const start = windowStart(n, shown, cursor);
  return (
    <>
      {Array.from({ length: shown }, (_, k) => start + k).map((i) => (
        <React.Fragment key={i}>{render(i, i === cursor)}</React.Fragment>
      ))}
    </>
  );
}

const STATE_COLOR: Record<string, string> = { dead: 'red', running: 'yellow', queued: 'cyan' };

export function TypeView({ snap, cols, rows, cursor, now }: DetailProps) {
  const ft = snap.focus_type!;
  const t = snap.types.find((x) => x.name === ft.type);
  if (!ft.known)
    return <Line width={cols} color="red">{`job type ${ft.type} is not declared (it is not in canon.job_types)`}</Line>;
  const running = t?.running ?? 0;
  const flags = [
    t?.paused ? `PAUSED by ${t.paused_by}${t.pause_reason ? ` "${oneLine(t.pause_reason, 60)}"` : ''}` : '',
    t && t.breaker !== 'closed' ? `breaker ${t.breaker}` : '',
  ]
    .filter(Boolean)
    .join(' · ');
  const jobs = ft.jobs;
  return (
    <Box flexDirection="column" width={cols}>
      <Line width={cols}>
        <Text bold>{ft.type}</Text>
        {` [${t?.lane ?? '?'}]  queued ${ft.queued.n} (ready ${ft.queued.ready}, held ${ft.queued.held})  running ${running}  `}
        <Text color={ft.dead.n ? 'red' : undefined}>{`dead ${ft.dead.n} (24 h: ${ft.dead.last_24h})`}</Text>
        {t?.oldest_ready != null ? `  oldest ready ${fmtAge(t.oldest_ready)}` : ''}
        {flags ? <Text color="yellow">{`  ${flags}`}</Text> : null}
      </Line>
      <Header
        width={cols}
        title={`  ${pad('STATE', 8)}${pad('JOB', 9)}${pad('ENTITY', 18)}${pad('TRIES', 7)}DETAIL`}
        note={jobs.length ? `newest dead, running, oldest queued (up to 100 each)` : undefined}
      />
      {jobs.length === 0 ? (
        <Line width={cols} dim>
          {'  no dead, running or queued job of this type'}
        </Line>
      ) : null}
      <Scrolled
        n={jobs.length}
        rows={rows - 2}
        cursor={cursor}
        render={(i, sel) => {
          const j = jobs[i];
          const detail =
            j.state === 'dead'
              ? `${j.last_reason ?? '—'}: ${oneLine(j.last_error, 300)}  died ${ago(j.finished_at, now)}`
              : j.state === 'running'
                ? `worker ${shortId(j.locked_by)} since ${clock(j.locked_at)}, heartbeat ${ago(j.heartbeat_at, now)}`
                : j.hold_reason
                  ? `held: ${j.hold_reason}`
                  : Date.parse(j.run_at) > now
                    ? `retry at ${clock(j.run_at)}${j.last_error ? ` after ${j.last_reason}: ${oneLine(j.last_error, 200)}` : ''}`
                    : `ready, waiting ${fmtAge((now - Date.parse(j.run_at)) / 1000)}`;
          return (
            <Line width={cols} selectable selected={sel}>
              <Text color={STATE_COLOR[j.state]}>{pad(j.state.toUpperCase(), 8)}</Text>
              {`${pad(`#${j.id}`, 9)}${pad(j.entity_id, 18)}${pad(`${j.attempts}/${j.max_attempts}`, 7)}${detail}`}
            </Line>
          );
        }}
      />
    </Box>
  );
}

function TraceRows({ snap, cols, rows, cursor, c }: DetailProps & { c: ChalkInstance }) {
  const { summary, items } = traceItems(snap, c);
  return (
    <>
      <Line width={cols}>{summary}</Line>
      <Scrolled
        n={items.length}
        rows={rows - 1}
        cursor={cursor}
        render={(i, sel) => {
          const it = items[i];
          return (
            <Line width={cols} selectable selected={sel}>
              {it.kind === 'trace' ? it.line : ''}
            </Line>
          );
        }}
      />
    </>
  );
}

export function EntityView(props: DetailProps & { c: ChalkInstance }) {
  const fe = props.snap.focus_entity!;
  if (!fe.exists)
    return (
      <Line
        width={props.cols}
        color="red"
      >{`no entity "${oneLine(fe.entity, 80)}" in the ledger (Esc to go back, / to search again)`}</Line>
    );
  return (
    <Box flexDirection="column" width={props.cols}>
      <TraceRows {...props} />
    </Box>
  );
}

/** The dead-job detail: what it is, why it died, each attempt, then the entity's trace. */
export function JobView(props: DetailProps & { c: ChalkInstance; jobId: number }) {
  const { snap, cols, rows, jobId } = props;
  const ch = snap.focus_entity?.chain;
  const j = ch?.jobs.find((x) => x.id === jobId);
  if (!j || !ch)
    return (
      <Line
        width={cols}
        color="red"
      >{`job #${jobId} is not in the ledger of entity ${snap.focus_entity?.entity}`}</Line>
    );
  const node = props.snap.focus_entity?.trace;
  const retried = ch.actions.find((a) => a.job_id === j.id && a.action === 'retry');
  const dead = j.status === 'failed' && !retried;
  const runs = ch.runs.filter((r) => r.job_id === j.id);
  const errRows = Math.max(1, Math.min(3, rows - 10));
  const err = j.last_error ? wrap(oneLine(j.last_error, 2000), cols - 12, errRows) : [];
  const fixed = 1 + (err.length || 1) + (retried ? 1 : 0) + 1;
  // the attempts get at most half of what is left, the trace the rest
  const runRows = Math.min(runs.length, Math.max(0, Math.floor((rows - fixed) / 2)));
  const shownRuns = runRows > 0 ? runs.slice(-runRows) : [];
  const traceRows = rows - fixed - shownRuns.length;
  return (
    <Box flexDirection="column" width={cols}>
      <Line width={cols}>
        <Text bold>{`job #${j.id} ${j.type}`}</Text>
        {` [${j.lane}] `}
        <Text bold color={dead ? 'red' : j.status === 'succeeded' ? 'green' : 'yellow'}>
          {dead ? 'DEAD' : j.status}
        </Text>
        {`  entity ${j.entity_id}  attempts ${j.attempts}/${j.max_attempts}${j.last_reason ? `  reason ${j.last_reason}` : ''}  trace ${j.trace_id ?? '—'}`}
      </Line>
      {err.length ? (
        err.map((l, i) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: a line of the error is its position
          <Line key={i} width={cols} color="red">
            {`${i === 0 ? 'last error: ' : '            '}${l}`}
          </Line>
        ))
      ) : (
        <Line width={cols} dim>
          {'last error: —'}
        </Line>
      )}
      {retried ? (
        <Line
          width={cols}
          color="green"
        >{`retried as job #${retried.new_job_id} by ${retried.actor} ${ago(retried.at, props.now)}${retried.reason ? ` ("${oneLine(retried.reason, 80)}")` : ''}`}</Line>
      ) : null}
      <Header
        width={cols}
        title="ATTEMPTS"
        note={
          runs.length > shownRuns.length ? `last ${shownRuns.length} of ${runs.length}` : plural(runs.length, 'run')
        }
      />
      {shownRuns.map((r) => (
        <Line key={r.id} width={cols} color={r.status === 'failed' ? 'red' : undefined}>
          {`  ${r.attempt} ${pad(r.status, 10)}${clock(r.started_at)} ${pad(r.finished_at ? fmtAge((Date.parse(r.finished_at) - Date.parse(r.started_at)) / 1000) : 'running', 8)} ${r.reason ? `${r.reason}: ` : ''}${r.error ? `${oneLine(r.error, 300)}  ` : ''}trace ${r.trace_id}`}
        </Line>
      ))}
      {node && traceRows > 0 ? <TraceRows {...props} rows={traceRows} /> : null}
    </Box>
  );
}
