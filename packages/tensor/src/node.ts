/** @file Node-only adapter selection over dawn.node: hardware first, then llvmpipe (GLES), then SwiftShader (Vulkan). */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileTuningStore, setTuningStore } from './autotune';
import { createRequire } from 'node:module';
import { Device } from './device';
import { NoAdapterError } from './errors';
import { setDefaultDevice } from './runtime';

export type AdapterChoice = 'hardware' | 'llvmpipe' | 'swiftshader';
export const ADAPTER_ORDER: readonly AdapterChoice[] = ['hardware', 'llvmpipe', 'swiftshader'];

/** Where Debian's chromium package puts SwiftShader's Vulkan ICD. */
export const SWIFTSHADER_ICD_CANDIDATES = ['/usr/lib/chromium/vk_swiftshader_icd.json', '/usr/lib64/chromium/vk_swiftshader_icd.json'];

export const INSTALL_HINT =
  'Install a software adapter: `sudo apt-get install -y libegl-mesa0 libgl1-mesa-dri` (llvmpipe, fastest) ' +
  'or `sudo apt-get install -y chromium` (SwiftShader).';

interface DawnModule {
  create(flags: string[]): GPU;
}

/**
 * The optional peer dependency `webgpu` (Dawn for Node) is not installed. Only the Node helper needs it; browser code
 * gets its adapter from `navigator.gpu`. A NoAdapterError, so code that handles "no adapter" handles this too.
 */
export class WebGpuPackageMissingError extends NoAdapterError {
  override name = 'WebGpuPackageMissingError';
}

/** What loading `webgpu` threw, as the error a user sees: a missing package becomes WebGpuPackageMissingError. */
export function dawnLoadError(cause: unknown): Error {
  const e = cause as { code?: string; message?: string };
  if ((e?.code === 'MODULE_NOT_FOUND' || e?.code === 'ERR_MODULE_NOT_FOUND') && /['"]webgpu['"]/.test(e.message ?? '')) {
    return new WebGpuPackageMissingError(
      "createNodeDevice needs the package 'webgpu' (Dawn's WebGPU for Node), an optional peer dependency of " +
        '@metagrad/tensor that is not installed. Install it beside metagrad: `npm install webgpu@^0.6.2` ' +
        '(or `pnpm add webgpu@^0.6.2`). Browser code does not need it: create the device from navigator.gpu.',
      [{ name: 'webgpu', error: e.message ?? String(cause) }],
    );
  }
  return cause instanceof Error ? cause : new Error(String(cause));
}

let dawn: DawnModule | null = null;
function loadDawn(): DawnModule {
  if (!dawn) {
    const require = createRequire(import.meta.url);
    try {
      dawn = require('webgpu') as DawnModule;
    } catch (e) {
      throw dawnLoadError(e);
    }
  }
  return dawn;
}

const SOFTWARE_NAMES = /llvmpipe|swiftshader|lavapipe|softpipe|software|microsoft basic/i;

async function tryAdapter(choice: AdapterChoice, maxDispatchesPerSubmit?: number): Promise<Device> {
  const { create } = loadDawn();
  let flags: string[] = [];
  let requestAdapterOptions: GPURequestAdapterOptions = {};
  let backend = 'default';
  if (choice === 'llvmpipe') {
    // EGL picks its platform when the display is opened, so setting it here (before create) is enough.
    process.env.EGL_PLATFORM ??= 'surfaceless';
    flags = ['backend=opengles'];
    requestAdapterOptions = { featureLevel: 'compatibility' } as GPURequestAdapterOptions;
    backend = 'opengles';
  } else if (choice === 'swiftshader') {
    const icd = process.env.METAGRAD_SWIFTSHADER_ICD ?? SWIFTSHADER_ICD_CANDIDATES.find((p) => existsSync(p));
    if (!icd) throw new Error(`SwiftShader ICD not found (looked in ${SWIFTSHADER_ICD_CANDIDATES.join(', ')})`);
    process.env.VK_ICD_FILENAMES = icd;
    flags = ['backend=vulkan'];
    backend = 'vulkan';
  } else {
    requestAdapterOptions = { powerPreference: 'high-performance' };
  }
  const gpu = create(flags);
  const adapter = await gpu.requestAdapter(requestAdapterOptions);
  if (!adapter) throw new Error('requestAdapter() returned null');
  const info = adapter.info;
  const text = `${info?.vendor ?? ''} ${info?.architecture ?? ''} ${info?.device ?? ''} ${info?.description ?? ''}`;
  if (choice === 'hardware' && (SOFTWARE_NAMES.test(text) || (info as { isFallbackAdapter?: boolean })?.isFallbackAdapter)) {
    throw new Error(`only a software adapter is exposed by default (${text.trim()})`);
  }
  if (choice === 'llvmpipe' && !/llvmpipe|mesa/i.test(text)) {
    throw new Error(`GLES backend gave '${text.trim()}', not llvmpipe`);
  }
  return Device.create({
    gpu,
    requestAdapterOptions,
    adapterName: choice,
    backend,
    keepAlive: gpu,
    maxDispatchesPerSubmit,
  });
}

export interface NodeDeviceOptions {
  /** Force one adapter; defaults to `METAGRAD_ADAPTER` or automatic selection. */
  adapter?: AdapterChoice | 'auto';
  maxDispatchesPerSubmit?: number;
  /** Also make it the default device (default true). */
  setDefault?: boolean;
}

/** Parses METAGRAD_ADAPTER, rejecting unknown names with a clear message. */
export function adapterFromEnv(): AdapterChoice | 'auto' {
  const v = process.env.METAGRAD_ADAPTER?.trim().toLowerCase();
  if (!v || v === 'auto') return 'auto';
  if ((ADAPTER_ORDER as readonly string[]).includes(v)) return v as AdapterChoice;
  throw new NoAdapterError(`METAGRAD_ADAPTER='${v}' is not one of auto, ${ADAPTER_ORDER.join(', ')}`, []);
}

/**
 * Acquires a device in Node. With 'auto' it tries hardware, llvmpipe, then SwiftShader and keeps the first that
 * works; a forced adapter is tried alone. Throws NoAdapterError listing every attempt and what to install.
 */
export async function createNodeDevice(options: NodeDeviceOptions = {}): Promise<Device> {
  const wanted = options.adapter ?? adapterFromEnv();
  // A missing `webgpu` package is one clear error, not the same line under every adapter tried.
  loadDawn();
  const order = wanted === 'auto' ? ADAPTER_ORDER : [wanted];
  const tried: { name: string; error: string }[] = [];
  for (const choice of order) {
    try {
      const device = await tryAdapter(choice, options.maxDispatchesPerSubmit);
      if (options.setDefault ?? true) setDefaultDevice(device);
      installTuningStore();
      return device;
    } catch (e) {
      tried.push({ name: choice, error: (e as Error).message });
    }
  }
  throw new NoAdapterError(`no WebGPU adapter could be acquired.\n${tried.map((t) => `  - ${t.name}: ${t.error}`).join('\n')}\n${INSTALL_HINT}`, tried);
}

/** Lists which adapters work on this machine (each acquired and destroyed in turn). */
export async function availableAdapters(): Promise<AdapterChoice[]> {
  const ok: AdapterChoice[] = [];
  for (const choice of ADAPTER_ORDER) {
    try {
      const d = await tryAdapter(choice);
      d.destroy();
      ok.push(choice);
    } catch {
      /* not available */
    }
  }
  return ok;
}

let tuningStoreInstalled = false;

/**
 * Kernel tunings measured by `autotune` persist in `$METAGRAD_CACHE_DIR/tuning.json` (default ~/.cache/metagrad),
 * so a process starts with the variants measured best on its adapter. `METAGRAD_CACHE_DIR=off` disables it.
 */
function installTuningStore(): void {
  if (tuningStoreInstalled) return;
  tuningStoreInstalled = true;
  const dir = process.env.METAGRAD_CACHE_DIR ?? join(homedir(), '.cache', 'metagrad');
  if (dir === 'off') return;
  setTuningStore(
    fileTuningStore({
      dir,
      readFile: (p) => readFileSync(p, 'utf8'),
      writeFile: (p, text) => writeFileSync(p, text),
      mkdir: (p) => mkdirSync(p, { recursive: true }),
      rename: renameSync,
      remove: (p) => rmSync(p, { force: true }),
    }),
  );
}
