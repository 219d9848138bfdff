/**
 * @file Imported first by main.ts. Under the `metagrad` launcher (bin.mjs) fd 2 is a pipe that filters Dawn's native
 * warnings and fd 3 is the real stderr: `process.stderr` is pointed at fd 3 so the CLI's own output (progress bars,
 * messages, errors) bypasses the filter and still sees a TTY. Run directly (`tsx main.ts`), nothing changes.
 */
import { writeSync } from 'node:fs';
import { Writable } from 'node:stream';
import { WriteStream, isatty } from 'node:tty';

const fd = Number(process.env.METAGRAD_CLI_STDERR_FD);
if (Number.isInteger(fd) && fd > 2) {
  delete process.env.METAGRAD_CLI_STDERR_FD; // not inherited by processes the CLI starts
  const stream: NodeJS.WriteStream = isatty(fd)
    ? new WriteStream(fd)
    : (Object.assign(
        new Writable({
          write(chunk: Buffer, _encoding, callback) {
            writeSync(fd, chunk); // synchronous, as Node's own stderr to a file or pipe
            callback();
          },
        }),
        { fd, isTTY: false },
      ) as unknown as NodeJS.WriteStream);
  Object.defineProperty(process, 'stderr', { configurable: true, enumerable: true, get: () => stream });
}
