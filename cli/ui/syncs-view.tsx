import { Box, Text, useApp, useInput } from 'ink';
import { useRef, useState } from 'react';
import type { RunRecord, SyncRun } from '../../engine/sync/types.js';
import { renderRunText } from '../render/run-text.js';
import { plain } from '../render/style.js';

export interface OverviewRow extends SyncRun {
  readonly mapping_status: string;
}

export interface SyncsViewProps {
  readonly rows: readonly OverviewRow[];
  /** Loads a run's failed records when the person opens it. */
  readonly loadFailed: (runId: string) => Promise<readonly RunRecord[]>;
}

const COLOR: Record<string, string> = {
  success: 'green',
  partial_success: 'yellow',
  failed: 'red',
  in_progress: 'cyan',
};

/**
 * The interactive sync overview: ↑/↓ select a mapping's latest run, Enter opens its detail
 * (counts, errors with recommended actions, failed records), Esc goes back, q quits.
 * A thin screen over data the command already loaded; nothing here talks to the store directly.
 */
export function SyncsView({ rows, loadFailed }: SyncsViewProps) {
  const { exit } = useApp();
  const [index, setIndexState] = useState(0);
  // The input handler may run before the next render: read the selection from a ref.
  const selected = useRef(0);
  const setIndex = (f: (i: number) => number) => {
    selected.current = f(selected.current);
    setIndexState(selected.current);
  };
  const [detail, setDetailState] = useState<{ run: SyncRun; failed: readonly RunRecord[] } | null>(null);
  const opened = useRef<typeof detail>(null);
  const setDetail = (d: typeof detail) => {
    opened.current = d;
    setDetailState(d);
  };

  useInput((input, key) => {
    if (input === 'q' || (key.ctrl && input === 'c')) return exit();
    if (opened.current) {
      if (key.escape || key.backspace || key.leftArrow) setDetail(null);
      return;
    }
    if (key.upArrow) setIndex((i) => Math.max(0, i - 1));
    if (key.downArrow) setIndex((i) => Math.min(rows.length - 1, i + 1));
    const run = rows[selected.current];
    if (key.return && run) {
      void loadFailed(run.id).then((failed) => setDetail({ run, failed }));
    }
  });

  if (rows.length === 0) return <Text>No sync runs match. Press q to quit.</Text>;
  if (detail)
    return (
      <Box flexDirection="column">
        <Text>{renderRunText(detail.run, plain, detail.failed)}</Text>
        <Text dimColor>Esc back · q quit</Text>
      </Box>
    );
  return (
    <Box flexDirection="column">
      <Text bold>
        {'  '}
        {pad('LATEST SYNC', 16)}
        {pad('STARTED', 21)}
        {pad('MAPPING', 24)}
        {pad('MODEL (SOURCE)', 30)}
        {pad('DESTINATION', 16)}
        {pad('ACTION', 8)}
        STATUS
      </Text>
      {rows.map((r, i) => (
        <Text key={r.id} inverse={i === index}>
          {i === index ? '› ' : '  '}
          <Text color={COLOR[r.status] ?? 'white'}>{pad(r.status, 16)}</Text>
          {pad(r.started_at.replace('T', ' ').slice(0, 19), 21)}
          {pad(r.mapping, 24)}
          {pad(`${r.model} (${r.source})`, 30)}
          {pad(r.destination, 16)}
          {pad(r.action, 8)}
          {r.mapping_status}
        </Text>
      ))}
      <Text dimColor>↑/↓ select · Enter details and failed records · q quit</Text>
    </Box>
  );
}

function pad(text: string, width: number): string {
  return text.length >= width ? `${text.slice(0, width - 2)}… ` : text.padEnd(width);
}
