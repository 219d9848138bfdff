/**
 * @file The demo file server on a real socket (127.0.0.1, ephemeral port): it serves files, answers malformed
 * URLs with 400 and escapes from its root with 403, and stays up afterwards. Requests go through http.request
 * with a raw path, so no client-side URL normalisation hides what the server receives.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, serveDirectory } from '../../apps/browser/serve';

/** GET `path` sent verbatim; resolves to the status and body. */
function get(server: RunningServer, path: string): Promise<{ status: number; body: string }> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: Number(port), path, method: 'GET' }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    req.on('error', reject);
    // A server that died or hangs must fail this request, not stall the test until vitest's timeout.
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer to GET ${path}`)));
    req.end();
  });
}

describe('serveDirectory', () => {
  let top: string;
  let server: RunningServer;

  beforeAll(async () => {
    // root/ holds the site; secret.txt and root-sibling/ lie next to it and must stay unreachable.
    top = mkdtempSync(join(tmpdir(), 'metagrad-serve-'));
    const root = join(top, 'root');
    mkdirSync(join(root, 'sub'), { recursive: true });
    mkdirSync(join(top, 'root-sibling'));
    writeFileSync(join(root, 'index.html'), '<p>home</p>');
    writeFileSync(join(root, 'sub', 'app.js'), 'export {};');
    writeFileSync(join(top, 'secret.txt'), 'secret');
    writeFileSync(join(top, 'root-sibling', 'x.txt'), 'sibling');
    // Links inside the root: one to a file outside it (must stay unreachable), one to a file inside it (served).
    symlinkSync(join(top, 'secret.txt'), join(root, 'leak.txt'));
    symlinkSync(join(root, 'index.html'), join(root, 'alias.html'));
    server = await serveDirectory(root, 0);
  });
  afterAll(async () => {
    await server.close();
    rmSync(top, { recursive: true, force: true });
  });

  it('listens on 127.0.0.1 on an ephemeral port and serves files and directory indexes', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(await get(server, '/')).toEqual({ status: 200, body: '<p>home</p>' });
    expect(await get(server, '/sub/app.js')).toEqual({ status: 200, body: 'export {};' });
    expect((await get(server, '/missing.js')).status).toBe(404);
    expect((await get(server, '/sub/')).status).toBe(404);
  });

  it('answers malformed percent escapes with 400 and keeps serving', async () => {
    for (const path of ['/%E0%A4%A', '/%', '/%zz', '/sub/%C3%28', '/%ED%A0%80']) {
      expect((await get(server, path)).status, path).toBe(400);
    }
    expect((await get(server, '/sub/app.js')).status).toBe(200);
  });

  it('refuses paths that leave the root, however encoded, and keeps serving', async () => {
    const escapes = [
      '/../secret.txt',
      '/sub/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/..%2fsecret.txt',
      '/%2e%2e%2froot-sibling%2fx.txt',
      '/..%5csecret.txt',
      '/index.html%00.js',
    ];
    for (const path of escapes) {
      const { status, body } = await get(server, path);
      expect(['secret', 'sibling'], path).not.toContain(body);
      expect([403, 404], path).toContain(status);
    }
    // The encoded forms survive the URL parser and must be refused by the server itself.
    expect((await get(server, '/..%2fsecret.txt')).status).toBe(403);
    expect((await get(server, '/%2e%2e%2froot-sibling%2fx.txt')).status).toBe(403);
    expect((await get(server, '/index.html%00.js')).status).toBe(403);
    expect(await get(server, '/leak.txt')).toEqual({ status: 403, body: 'forbidden' });
    expect(await get(server, '/alias.html')).toEqual({ status: 200, body: '<p>home</p>' });
    expect((await get(server, '/')).status).toBe(200);
  });

  it('answers random paths of escapes, dots and slashes with 200, 400, 403 or 404, never leaking the secret, and stays up', async () => {
    const piece = fc.constantFrom(
      '/',
      '.',
      '..',
      '%',
      '%2e',
      '%2f',
      '%5c',
      '%00',
      '%E0%A4%A',
      '%C3',
      '%ZZ',
      '\\',
      'sub',
      'index.html',
      'secret.txt',
      'leak.txt',
      'a',
    );
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { maxLength: 8 }), async (pieces) => {
        const { status, body } = await get(server, `/${pieces.join('')}`);
        expect([200, 400, 403, 404]).toContain(status);
        expect(body).not.toBe('secret');
      }),
      { numRuns: 150 },
    );
    expect((await get(server, '/sub/app.js')).status).toBe(200);
  });
});
