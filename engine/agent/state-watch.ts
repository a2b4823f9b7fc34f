import type { StateBackend, StateDocument } from '../state/types.js';
import type { RuntimeStore } from '../store/types.js';
import type { AgentLogger } from './logger.js';

/**
 * Polls the state backend and swaps in a new apply: `serial` or `lineage` moved. Syncs already
 * running keep the state they started with; what is scheduled next follows the new one. A read
 * that fails (the file mid-replace, the database restarting) keeps the current state and is
 * logged once until reads work again.
 */
export class StateWatch {
  current: StateDocument | null;
  private readonly listeners: ((next: StateDocument | null, prev: StateDocument | null) => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private failing = false;
  private stopped = false;

  constructor(
    private readonly req: {
      readonly backend: StateBackend;
      readonly initial: StateDocument | null;
      readonly pollMs: number;
      readonly log: AgentLogger;
    },
  ) {
    this.current = req.initial;
  }

  onChange(listener: (next: StateDocument | null, prev: StateDocument | null) => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    const loop = () => {
      void this.poll().finally(() => {
        if (!this.stopped) this.timer = setTimeout(loop, this.req.pollMs);
      });
    };
    this.timer = setTimeout(loop, this.req.pollMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Reads the backend once; returns whether the state changed. */
  async poll(): Promise<boolean> {
    let next: StateDocument | null;
    try {
      next = await this.req.backend.read();
    } catch (e) {
      if (!this.failing)
        this.req.log.warn(
          'state_unreadable',
          `cannot read the state (${(e as Error).message}); keeping serial ${this.current?.serial ?? 0}`,
        );
      this.failing = true;
      return false;
    }
    if (this.failing) this.req.log.info('state_readable', 'the state can be read again');
    this.failing = false;
    const prev = this.current;
    if ((next?.serial ?? 0) === (prev?.serial ?? 0) && (next?.lineage ?? '') === (prev?.lineage ?? ''))
      return false;
    this.current = next;
    const changes = mappingChanges(prev, next);
    this.req.log.info(
      'state_changed',
      `picked up state serial ${next?.serial ?? 0}${changes.length ? `: ${changes.map((c) => `${c.mapping} ${c.change}`).join(', ')}` : ''}`,
      { serial: next?.serial ?? 0, lineage: next?.lineage ?? '', mappings: changes },
    );
    for (const l of this.listeners) l(next, prev);
    return true;
  }
}

type MappingChange = { mapping: string; change: 'added' | 'removed' | 'enabled' | 'disabled' | 'changed' };

/** What an apply did to mappings, for the log line. */
export function mappingChanges(prev: StateDocument | null, next: StateDocument | null): MappingChange[] {
  const of = (s: StateDocument | null) =>
    new Map((s?.resources ?? []).filter((r) => r.kind === 'mapping').map((r) => [r.name, r.body] as const));
  const before = of(prev);
  const after = of(next);
  const out: MappingChange[] = [];
  for (const [name, body] of after) {
    const old = before.get(name);
    if (!old) out.push({ mapping: name, change: 'added' });
    else if ((old.enabled !== false) !== (body.enabled !== false))
      out.push({ mapping: name, change: body.enabled === false ? 'disabled' : 'enabled' });
    else if (JSON.stringify(old) !== JSON.stringify(body)) out.push({ mapping: name, change: 'changed' });
  }
  for (const name of before.keys()) if (!after.has(name)) out.push({ mapping: name, change: 'removed' });
  return out.sort((a, b) => a.mapping.localeCompare(b.mapping));
}

/** When each applied mapping's last completed run (success or partial_success) finished, epoch ms. */
export async function lastSuccessByMapping(
  store: RuntimeStore,
  state: StateDocument | null,
): Promise<ReadonlyMap<string, number>> {
  const applied = new Set((state?.resources ?? []).filter((r) => r.kind === 'mapping').map((r) => r.name));
  const rows = await store.sql.all<{ mapping: string; at: unknown }>(
    `SELECT mapping, max(finished_at) AS at FROM runs WHERE status IN ('success', 'partial_success') GROUP BY mapping`,
  );
  const out = new Map<string, number>();
  for (const r of rows) {
    if (!applied.has(r.mapping) || r.at === null) continue;
    const ms = r.at instanceof Date ? r.at.getTime() : Date.parse(String(r.at));
    if (!Number.isNaN(ms)) out.set(r.mapping, ms);
  }
  return out;
}
