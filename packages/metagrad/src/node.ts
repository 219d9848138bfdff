/**
 * @file `metagrad/node`: the Node-only helpers (they import node:* and the optional peer dependency `webgpu`, Dawn
 * for Node). `await createNodeDevice()` picks an adapter (hardware, then llvmpipe, then SwiftShader) and makes it the
 * default device, so nothing else needs it passed around; without `webgpu` installed it throws
 * WebGpuPackageMissingError (a NoAdapterError) saying `npm install webgpu`. Also safetensors files on disk.
 */
export * from '@metagrad/tensor/node';
export * from '@metagrad/models/node';
