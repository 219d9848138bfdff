// @file What the `metagrad` launcher (bin.mjs) lets through of the native stderr of the CLI process: Dawn's
// warnings (Vulkan drivers not found, limits "artificially reduced", with source paths of the machine that built
// dawn.node) are dropped; any other native line is kept, and of a real GPU error block only its first line (the
// message), not the C++ source locations under it. The CLI's own stderr does not pass through here (bin.mjs gives
// it the real stderr on fd 3). Plain JavaScript so the launcher needs no TypeScript loader.

/** A C++ location line under a native message: `    at Fn (/path/file.cpp:106)` (JavaScript stack frames stay). */
const LOCATION = /^\s+at \S+ \(.*\.(?:cpp|cc|cxx|h|hpp|mm)(?::\d+)*\)\s*$/;

/**
 * A line filter with state (a blank line closes a dropped block, location lines follow their message).
 * `filter(line)` returns the line to print or null.
 */
export function createDawnStderrFilter() {
  let dropping = false; // inside a dropped warning block: its location lines and closing blank line go too
  let afterMessage = false; // after a kept native message: its location lines are dropped, the message kept
  return function filter(line) {
    if (/^Warning: /.test(line)) {
      dropping = true;
      afterMessage = false;
      return null;
    }
    if (LOCATION.test(line)) return dropping || afterMessage ? null : line;
    if (line.trim() === '') {
      if (dropping || afterMessage) {
        dropping = false;
        afterMessage = false;
        return null;
      }
      return line;
    }
    dropping = false;
    afterMessage = true;
    return line;
  };
}

/**
 * Pipes `input` (a readable stream of native stderr) to `output` through the filter, line by line; a last
 * line without a newline is flushed at the end. Resolves when `input` ends.
 */
export function pipeFiltered(input, output, filter = createDawnStderrFilter()) {
  return new Promise((resolve) => {
    let pending = '';
    input.setEncoding('utf8');
    input.on('data', (chunk) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        const kept = filter(line);
        if (kept !== null) output.write(`${kept}\n`);
      }
    });
    input.on('end', () => {
      if (pending !== '') {
        const kept = filter(pending);
        if (kept !== null) output.write(kept);
      }
      resolve();
    });
  });
}
