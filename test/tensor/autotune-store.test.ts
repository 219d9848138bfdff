/**
 * @file The matmul tuning store never trusts an edited or corrupt entry, never loses other adapters' entries, and
 * replaces its file atomically (temporary file + rename).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  defaultTuning,
  fileTuningStore,
  matmulTuning,
  MATMUL_CANDIDATES,
  resetTuning,
  setTuningStore,
  TUNING_VERSION,
  type MatmulTuning,
} from '../../packages/tensor/src/autotune';
import type { AdapterDescription, Device } from '@metagrad/tensor';

const adapter = {
  name: 'llvmpipe',
  vendor: 'mesa',
  architecture: 'x86',
  device: 'cpu',
  description: 'test',
  backend: 'vulkan',
  featureLevel: 'core',
  isFallbackAdapter: false,
} as unknown as AdapterDescription;
/** matmulTuning only reads the adapter: a stand-in device keeps this test off the GPU. */
const fakeDevice = (): Device => ({ adapter, limits: {} }) as unknown as Device;
const KEY = 'llvmpipe|mesa|x86|cpu|test|vulkan|core';
const FILE = '/cache/tuning.json';

/** A measured tuning that picks the last candidate of every class (not the default). */
function measured(): MatmulTuning {
  return {
    version: TUNING_VERSION,
    adapterKey: KEY,
    measured: true,
    matmul: {
      small: MATMUL_CANDIDATES.small.at(-1)!,
      medium: MATMUL_CANDIDATES.medium.at(-1)!,
      large: MATMUL_CANDIDATES.large.at(-1)!,
    },
    timings: { small: { simple: 1.5 }, medium: {}, large: {} },
    date: '2026-01-01T00:00:00.000Z',
  };
}

/** An in-memory file system with the Node store's semantics (ENOENT for a missing file, rename replaces). */
function memoryIO(initial?: string) {
  const files = new Map<string, string>();
  if (initial !== undefined) files.set(FILE, initial);
  const writes: string[] = [];
  const warnings: string[] = [];
  const io = {
    dir: '/cache/',
    readFile: (p: string): string => {
      const text = files.get(p);
      if (text === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
      return text;
    },
    writeFile: (p: string, t: string) => {
      writes.push(p);
      files.set(p, t);
    },
    mkdir: () => {},
    rename: (from: string, to: string) => {
      files.set(to, files.get(from)!);
      files.delete(from);
    },
    remove: (p: string) => void files.delete(p),
    warn: (m: string) => void warnings.push(m),
  };
  return { files, writes, warnings, io };
}

const loadThrough = (stored: unknown): { tuning: MatmulTuning; warned: string[] } => {
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
  const device = fakeDevice();
  setTuningStore({ load: () => stored as MatmulTuning, save: () => {} });
  try {
    return { tuning: matmulTuning(device), warned: warn.mock.calls.map((c) => String(c[0])) };
  } finally {
    resetTuning(device);
  }
};

afterEach(() => {
  setTuningStore(null);
  vi.restoreAllMocks();
});

describe('matmul tuning validation', () => {
  it('trusts a valid measured entry', () => {
    const { tuning, warned } = loadThrough(measured());
    expect(tuning).toEqual(measured());
    expect(warned).toEqual([]);
  });

  it.each([
    ['a register variant with an edited block', (t: Record<string, any>) => (t.matmul.large = { kind: 'register', rows: 3, cols: 16, wgX: 8, wgY: 4 })],
    [
      'a huge workgroup',
      (t: Record<string, any>) => (t.matmul.medium = { kind: 'workgroup', tileM: 4096, tileN: 64, tileK: 16, threadRows: 4, threadCols: 4 }),
    ],
    ['an unknown kind', (t: Record<string, any>) => (t.matmul.small = { kind: 'magic' })],
    ['an extra key in a variant', (t: Record<string, any>) => (t.matmul.small = { kind: 'simple', wgX: 1 })],
    ["a class's variant from another class", (t: Record<string, any>) => (t.matmul.small = MATMUL_CANDIDATES.large[2])],
    ['a missing class', (t: Record<string, any>) => delete t.matmul.large],
    ['an unknown class', (t: Record<string, any>) => (t.matmul.huge = { kind: 'simple' })],
    ['matmul a string', (t: Record<string, any>) => (t.matmul = 'simple')],
    ['measured a string', (t: Record<string, any>) => (t.measured = 'yes')],
    ['a negative timing', (t: Record<string, any>) => (t.timings.small.simple = -1)],
    ['timings a number', (t: Record<string, any>) => (t.timings = 3)],
    ['a numeric date', (t: Record<string, any>) => (t.date = 5)],
    ['another version', (t: Record<string, any>) => (t.version = TUNING_VERSION + 1)],
    ["another adapter's key", (t: Record<string, any>) => (t.adapterKey = 'other')],
  ])('ignores a stored tuning with %s, with a warning, and uses the default', (_what, edit) => {
    const stored = measured() as unknown as Record<string, any>;
    edit(stored);
    const { tuning, warned } = loadThrough(stored);
    expect(tuning).toEqual(defaultTuning(adapter));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/ignoring the stored matmul tuning/);
  });

  it.each([[null], ['x'], [3], [[]]])('ignores a stored tuning that is %j', (stored: unknown) => {
    expect(loadThrough(stored).tuning).toEqual(defaultTuning(adapter));
  });

  it('a store whose load throws is the default, with a warning', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const device = fakeDevice();
    setTuningStore({
      load: () => {
        throw new Error('EIO');
      },
      save: () => {},
    });
    expect(matmulTuning(device)).toEqual(defaultTuning(adapter));
    expect(String(warn.mock.calls[0][0])).toMatch(/could not be read.*EIO/);
    resetTuning(device);
  });
});

describe('fileTuningStore', () => {
  const other = { version: TUNING_VERSION, adapterKey: 'gpu', measured: true, matmul: { small: { kind: 'future' } } };

  it("keeps other adapters' entries (even ones this build would not trust, and a '__proto__' key) and writes through a temporary file", () => {
    // Written as text: an object literal's '__proto__' would set the prototype, not make an entry.
    const { files, writes, io } = memoryIO(`{"entries":{"gpu":${JSON.stringify(other)},"__proto__":{"x":1}}}`);
    const store = fileTuningStore(io);
    store.save(KEY, measured());
    const saved = JSON.parse(files.get(FILE)!).entries;
    expect(Object.keys(saved).sort()).toEqual(['__proto__', 'gpu', KEY].sort());
    expect(saved.gpu).toEqual(other);
    expect(saved[KEY]).toEqual(measured());
    expect(store.load(KEY)).toEqual(measured());
    expect(store.load('toString')).toBeUndefined();
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatch(/^\/cache\/tuning\.json\.tmp-/);
    expect([...files.keys()].sort()).toEqual([FILE]);
  });

  it.each([
    ['entries is a string', '{"entries":"oops"}'],
    ['entries is an array', '{"entries":[1]}'],
    ['the file is not JSON', '{"entries":{"gpu":'],
    ['the top level is a number', '42'],
  ])('when %s, save moves the file aside (kept), warns and writes the new entry instead of throwing', (_what, text) => {
    const { files, warnings, io } = memoryIO(text);
    const store = fileTuningStore(io);
    expect(store.load(KEY)).toBeUndefined();
    expect(() => store.save(KEY, measured())).not.toThrow();
    expect(JSON.parse(files.get(FILE)!).entries[KEY]).toEqual(measured());
    const aside = [...files.keys()].filter((p) => p.startsWith(`${FILE}.corrupt-`));
    expect(aside).toHaveLength(1);
    expect(files.get(aside[0])).toBe(text);
    expect(warnings.some((w) => /corrupt.*moved aside/.test(w))).toBe(true);
  });

  it('a file that exists but cannot be read is left alone: the save is skipped with a warning', () => {
    const { files, warnings, io } = memoryIO(JSON.stringify({ entries: { gpu: other } }));
    const before = files.get(FILE);
    const store = fileTuningStore({
      ...io,
      readFile: () => {
        throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
      },
    });
    expect(store.load(KEY)).toBeUndefined();
    store.save(KEY, measured());
    expect(files.get(FILE)).toBe(before);
    expect(warnings.some((w) => /could not be read.*EACCES.*not saved/.test(w))).toBe(true);
  });

  it('a write that fails before the rename leaves the old file intact and no temporary behind', () => {
    const { files, io } = memoryIO(JSON.stringify({ entries: { gpu: other } }));
    const before = files.get(FILE);
    const store = fileTuningStore({
      ...io,
      writeFile: (p, t) => {
        files.set(p, t.slice(0, 10)); // a torn write
        throw new Error('ENOSPC');
      },
    });
    expect(() => store.save(KEY, measured())).toThrow(/ENOSPC/);
    expect(files.get(FILE)).toBe(before);
    expect([...files.keys()]).toEqual([FILE]);
  });

  it('a missing file is an empty store', () => {
    const { files, io } = memoryIO();
    const store = fileTuningStore(io);
    expect(store.load(KEY)).toBeUndefined();
    store.save(KEY, measured());
    expect(Object.keys(JSON.parse(files.get(FILE)!).entries)).toEqual([KEY]);
  });
});
