/** @file A tiny static file server for the built demos, bound to 127.0.0.1 only (no dependencies, no directory listing). */
import { createReadStream, existsSync, realpathSync, statSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.bin': 'application/octet-stream',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

export interface RunningServer {
  /** Base URL ending in '/', e.g. http://127.0.0.1:5178/. */
  url: string;
  server: Server;
  close(): Promise<void>;
}

/**
 * Serves `root` on 127.0.0.1:`port` (0 picks a free port). A malformed URL gets 400 and a path outside `root`
 * (`/../`, `%2e%2e%2f`, a NUL byte) gets 403; no request, however odd, can throw out of the handler.
 */
export async function serveDirectory(root: string, port = 0): Promise<RunningServer> {
  const base = normalize(resolve(root) + sep);
  const server = createServer((request, response) => {
    try {
      respond(base, request, response);
    } catch (error) {
      // A file that vanished between the checks, or any other surprise: answer, never crash the process.
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
      response.end(`internal error: ${(error as Error).message}`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}/`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The root's real path with a trailing separator (the root itself may sit behind a symbolic link, e.g. /tmp on macOS). */
function realBase(base: string): string {
  return normalize(realpathSync(base) + sep);
}

function respond(base: string, request: IncomingMessage, response: ServerResponse): void {
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(request.url ?? '/', 'http://127.0.0.1').pathname);
  } catch {
    // decodeURIComponent throws a URIError on a truncated or invalid percent escape such as /%E0%A4%A.
    response.writeHead(400, { 'content-type': 'text/plain' }).end('bad request: malformed URL');
    return;
  }
  let file = normalize(join(base, pathname));
  if (pathname.includes('\0') || !file.startsWith(base)) {
    response.writeHead(403, { 'content-type': 'text/plain' }).end('forbidden');
    return;
  }
  if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
  if (!existsSync(file) || !statSync(file).isFile()) {
    response.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${pathname}`);
    return;
  }
  // A symbolic link inside the root may point outside it: judge the real path, not the requested one.
  if (!realpathSync(file).startsWith(realBase(base))) {
    response.writeHead(403, { 'content-type': 'text/plain' }).end('forbidden');
    return;
  }
  const stream = createReadStream(file);
  stream.once('error', (error) => {
    if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
    response.end(`cannot read: ${error.message}`);
  });
  stream.once('open', () => {
    response.writeHead(200, {
      'content-type': MIME[extname(file)] ?? 'application/octet-stream',
      // The demos are rebuilt often: never let a browser serve a stale bundle.
      'cache-control': 'no-store',
    });
    stream.pipe(response);
  });
}
