/**
 * @file `webgpu` is an optional peer dependency: when it is not installed, the Node helper says so by name
 * (WebGpuPackageMissingError, a NoAdapterError) instead of a bare "Cannot find module". The real case (the package
 * removed from an npm install) is checked by scripts/install-smoke.sh.
 */
import { describe, expect, it } from 'vitest';
import { NoAdapterError } from '@metagrad/tensor';
import { WebGpuPackageMissingError, dawnLoadError } from '@metagrad/tensor/node';

const notFound = (message: string, code = 'MODULE_NOT_FOUND') => Object.assign(new Error(message), { code });

describe('a missing webgpu package', () => {
  it('becomes WebGpuPackageMissingError naming the package and the install command', () => {
    const e = dawnLoadError(notFound("Cannot find module 'webgpu'\nRequire stack:\n- /x/node.js"));
    expect(e).toBeInstanceOf(WebGpuPackageMissingError);
    expect(e).toBeInstanceOf(NoAdapterError);
    expect(e.name).toBe('WebGpuPackageMissingError');
    expect(e.message).toMatch(/optional peer dependency/);
    expect(e.message).toMatch(/npm install webgpu@\^0\.6/);
    expect((e as NoAdapterError).tried[0].error).toMatch(/Cannot find module 'webgpu'/);
    expect(dawnLoadError(notFound("Cannot find package 'webgpu' imported from /x", 'ERR_MODULE_NOT_FOUND'))).toBeInstanceOf(WebGpuPackageMissingError);
  });

  it('other load failures (a broken native binary, a missing module inside webgpu) pass through unchanged', () => {
    const native = new Error('libvulkan.so.1: cannot open shared object file');
    expect(dawnLoadError(native)).toBe(native);
    const inner = notFound("Cannot find module './dawn.node'");
    expect(dawnLoadError(inner)).toBe(inner);
    expect(dawnLoadError('text')).toBeInstanceOf(Error);
  });
});
