import { render } from 'ink-testing-library';
import { createElement } from 'react';
import { describe, expect, it } from 'vitest';
import { type OverviewRow, SyncsView } from '../../cli/ui/syncs-view.js';
import { emptyRun } from '../../engine/sync/types.js';

const run = (id: string, mapping: string, status: OverviewRow['status']): OverviewRow => ({
  ...emptyRun({
    id,
    mapping,
    model: 'users',
    source: 'wh',
    destination: 'crm',
    action: 'upsert',
    trigger: 'manual',
    started_at: '2026-11-20T10:00:00.000Z',
  }),
  status,
  finished_at: '2026-11-20T10:00:01.000Z',
  duration_ms: 1000,
  mapping_status: 'enabled',
});

/** Waits (bounded) until the view shows `text`: rendering is asynchronous and the machine may be busy. */
async function until(frame: () => string | undefined, text: string): Promise<void> {
  for (let i = 0; i < 200 && !frame()?.includes(text); i++) await new Promise((r) => setTimeout(r, 10));
  expect(frame()).toContain(text);
}

describe('interactive sync overview', () => {
  it('lists runs, opens the selected one with its failed records, and goes back', async () => {
    const rows = [run('run_a', 'to_crm', 'success'), run('run_b', 'to_hook', 'partial_success')];
    const asked: string[] = [];
    const view = render(
      createElement(SyncsView, {
        rows,
        loadFailed: async (id: string) => {
          asked.push(id);
          return [
            {
              key: '42',
              change: 'added' as const,
              status: 'failed' as const,
              code: 'http_422',
              message: 'bad email',
              payload: { email: 'x' },
            },
          ];
        },
      }),
    );
    expect(view.lastFrame()).toContain('› success');
    expect(view.lastFrame()).toContain('to_hook');
    view.stdin.write('\u001b[B'); // down
    await until(view.lastFrame, '› partial_success');
    view.stdin.write('\r');
    await until(view.lastFrame, 'Sync run_b of mapping to_hook: partial_success');
    expect(asked).toEqual(['run_b']);
    expect(view.lastFrame()).toContain('42  added  http_422: bad email');
    view.stdin.write('\u001b[D'); // left arrow (a lone Esc waits for more bytes)
    await until(view.lastFrame, 'LATEST SYNC');
    view.unmount();
  });
});
