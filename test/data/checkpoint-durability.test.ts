/** @file saveSafetensors is durable: the temporary file is fsynced before the rename, and the directory after it. */
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadSafetensors, saveSafetensors } from '../../packages/models/src/node';

/** Every fs call that matters for durability, in order, with the path each file descriptor was opened on. */
const calls: string[] = [];
const openPaths = new Map<number, string>();

vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  return {
    ...actual,
    openSync: (path: fs.PathLike, ...rest: unknown[]) => {
      const fd = (actual.openSync as (...args: unknown[]) => number)(path, ...rest);
      openPaths.set(fd, String(path));
      return fd;
    },
    fsyncSync: (fd: number) => {
      calls.push(`fsync ${openPaths.get(fd)}`);
      actual.fsyncSync(fd);
    },
    renameSync: (from: fs.PathLike, to: fs.PathLike) => {
      calls.push(`rename ${String(from)} -> ${String(to)}`);
      actual.renameSync(from, to);
    },
  };
});

describe('saveSafetensors durability', () => {
  const dir = fs.mkdtempSync(join(tmpdir(), 'metagrad-fsync-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('fsyncs the temporary file before renaming it into place, then fsyncs the directory', () => {
    const path = join(dir, 'model.safetensors');
    saveSafetensors(path, { w: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) } });
    const temporary = `${path}.tmp-${process.pid}`;
    const expected = [`fsync ${temporary}`, `rename ${temporary} -> ${path}`];
    if (process.platform !== 'win32') expected.push(`fsync ${dir}`);
    expect(calls).toEqual(expected);
    expect(Array.from(loadSafetensors(path).tensors.w.data)).toEqual([1, 2]);
  });
});
