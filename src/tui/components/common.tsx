// Building blocks: one terminal row that can never wrap onto a second (the frame's height is
// budgeted row by row), and the section header.

import { Box, Text } from 'ink';
import type React from 'react';

export interface LineProps {
  width: number;
  children?: React.ReactNode;
  /** a selectable row: draws the cursor gutter, highlighted when selected */
  selectable?: boolean;
  selected?: boolean;
  color?: string;
  dim?: boolean;
  bold?: boolean;
}

export function Line({ width, children, selectable, selected, color, dim, bold }: LineProps) {
  return (
    <Box width={width} height={1} overflow="hidden">
      <Text wrap="truncate-end" inverse={selected} color={color} dimColor={dim} bold={bold}>
        {selectable ? (selected ? '› ' : '  ') : ''}
        {children}
      </Text>
    </Box>
  );
}

export function Header({ width, title, note }: { width: number; title: string; note?: string }) {
  return (
    <Line width={width}>
      <Text bold color="cyan">
        {title}
      </Text>
      {note ? <Text dimColor>{`  ${note}`}</Text> : null}
    </Line>
  );
}

/** A fixed-height column of rows: never taller than `rows`, whatever its children. */
export function Column({ width, rows, children }: { width: number; rows: number; children: React.ReactNode }) {
  return (
    <Box flexDirection="column" width={width} height={rows} overflow="hidden">
      {children}
    </Box>
  );
}

export const severityColor = (s: 'warning' | 'critical' | undefined) =>
  s === 'critical' ? 'red' : s === 'warning' ? 'yellow' : undefined;
