/**
 * @file `pnpm demo:browser [--port N] [--no-build]`: builds the browser demos and serves them on 127.0.0.1
 * until interrupted, printing the URL to open in a WebGPU-capable browser.
 */
import { Command } from 'commander';
import { DIST_DIR, buildDemos, describeBuild } from './build';
import { serveDirectory } from './serve';

const program = new Command('demo:browser')
  .description('build the metagrad browser demos and serve them on 127.0.0.1')
  .option('--port <n>', 'port to listen on (0 = any free port)', '5178')
  .option('--no-build', 'serve the existing build without rebuilding')
  .parse();
const options = program.opts<{ port: string; build: boolean }>();
const port = Number(options.port);
if (!(Number.isInteger(port) && port >= 0 && port < 65536)) {
  console.error(`demo:browser: --port must be an integer in [0, 65535], got ${options.port}`);
  process.exit(2);
}
if (options.build) console.log(describeBuild(await buildDemos({ minify: true })));
const server = await serveDirectory(DIST_DIR, port).catch((error: NodeJS.ErrnoException) => {
  if (error.code !== 'EADDRINUSE') throw error;
  console.error(`demo:browser: port ${port} is in use on 127.0.0.1; pick another with --port N (0 = any free port)`);
  process.exit(1);
});
console.log(`\nmetagrad browser demos: ${server.url}\n(WebGPU needed: recent Chrome/Edge; Ctrl+C to stop)`);
process.on('SIGINT', () => void server.close().then(() => process.exit(0)));
