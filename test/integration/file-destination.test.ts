import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { provider } from '../../providers/file/index.js';
import type { LoadRecord, LoadRequest, Session } from '../../providers/sdk.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'backflow-file-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function open(path: string): Promise<Session> {
  return provider.open({ settings: { type: 'file', path }, configDir: dir, address: 'destination.out' });
}

function request(recs: readonly LoadRecord[], syncId = 'run-1'): LoadRequest {
  return { mapping: 'users_to_file', syncId, action: 'append', options: {}, records: recs };
}

async function lines(path: string): Promise<unknown[]> {
  const text = await readFile(path, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
}

const recs: LoadRecord[] = [
  { change: 'added', key: '1', idempotencyKey: 'k1', fields: { email: 'a@x.io', n: 9007199254740993n } },
  { change: 'updated', key: '["7","b"]', idempotencyKey: 'k2', fields: { tags: ['x'], note: 'line\nbreak' } },
  { change: 'deleted', key: '3', idempotencyKey: 'k3', fields: null },
];

describe('file append', () => {
  it('appends one JSON line per record, creating parent directories, relative to the config directory', async () => {
    const session = await open('out/nested/records.jsonl');
    expect(Object.keys(session).sort()).toEqual(['close', 'destination']);
    const results = await session.destination?.load(request(recs));
    expect(results).toEqual([{ status: 'ok' }, { status: 'ok' }, { status: 'ok' }]);
    await session.close();

    expect(await lines(join(dir, 'out/nested/records.jsonl'))).toEqual([
      { change: 'added', key: '1', fields: { email: 'a@x.io', n: '9007199254740993' }, sync_id: 'run-1' },
      { change: 'updated', key: '["7","b"]', fields: { tags: ['x'], note: 'line\nbreak' }, sync_id: 'run-1' },
      { change: 'deleted', key: '3', fields: null, sync_id: 'run-1' },
    ]);
  });

  it('appends later batches after earlier ones and keeps what was there', async () => {
    const path = join(dir, 'records.jsonl');
    await writeFile(path, '{"existing":true}\n');
    const session = await open('records.jsonl');
    await session.destination?.load(request(recs.slice(0, 1), 'run-1'));
    await session.destination?.load(request(recs.slice(1, 2), 'run-2'));
    expect(await session.destination?.load(request([]))).toEqual([]);
    const got = (await lines(path)) as Array<Record<string, unknown>>;
    expect(got.map((l) => l.sync_id ?? 'existing')).toEqual(['existing', 'run-1', 'run-2']);
  });

  it('accepts an absolute path', async () => {
    const path = join(dir, 'abs.jsonl');
    const session = await provider.open({
      settings: { type: 'file', path },
      configDir: '/',
      address: 'destination.out',
    });
    await session.destination?.load(request(recs.slice(2)));
    expect(await lines(path)).toHaveLength(1);
  });

  it('marks every record retry with the OS message when the path is a directory', async () => {
    await mkdir(join(dir, 'taken'));
    const session = await open('taken');
    expect(await session.destination?.check?.({ action: 'append', options: {}, fields: [] })).toMatchObject([
      { code: 'not_a_file' },
    ]);
    const results = await session.destination?.load(request(recs));
    expect(results).toHaveLength(3);
    for (const r of results ?? []) {
      expect(r).toMatchObject({ status: 'retry', code: 'file_write_failed' });
      if (r.status !== 'ok') expect(r.message).toContain('EISDIR');
    }
  });

  it('marks every record retry when a parent is a file', async () => {
    await writeFile(join(dir, 'plain'), 'x');
    const session = await open('plain/records.jsonl');
    const results = await session.destination?.load(request(recs.slice(0, 2)));
    expect(results).toEqual([
      { status: 'retry', code: 'file_write_failed', message: expect.stringMatching(/ENOTDIR|EEXIST/) },
      { status: 'retry', code: 'file_write_failed', message: expect.stringMatching(/ENOTDIR|EEXIST/) },
    ]);
  });

  it('passes check for a new or existing regular file', async () => {
    const session = await open('new.jsonl');
    expect(await session.destination?.check?.({ action: 'append', options: {}, fields: [] })).toEqual([]);
  });

  it('needs a path', async () => {
    await expect(
      provider.open({ settings: { type: 'file' }, configDir: dir, address: 'destination.out' }),
    ).rejects.toThrow('destination.out: a file destination needs `path`');
    expect(provider.manifest.type).toBe('file');
    expect(Object.keys(provider.manifest.actions)).toEqual(['append']);
  });
});
