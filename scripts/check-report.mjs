/** @file CI check of `metagrad report --quick --json`: every section ran, every summary row has paper and goal columns and a ✓/≈/✗ (or no) mark, and every figure
 * is a non-trivial SVG and PNG. */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? 'report';
const results = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
const problems = [];
if (results.kind !== 'metagrad-report') problems.push(`results.json kind is ${results.kind}`);
for (const s of results.sections) {
  if (s.status !== 'ok') problems.push(`section ${s.id} failed: ${s.error}`);
  if (s.summary.length === 0) problems.push(`section ${s.id} has no summary rows`);
  for (const f of s.figures) {
    for (const [file, min] of [
      [f.svg, 2000],
      [f.png, 5000],
    ]) {
      let size = 0;
      try {
        size = statSync(join(dir, file)).size;
      } catch {
        /* missing */
      }
      if (size < min) problems.push(`figure ${file} is ${size} bytes (expected ≥ ${min})`);
    }
    const svg = readFileSync(join(dir, f.svg), 'utf8');
    if (!svg.startsWith('<svg') && !svg.startsWith('<?xml')) problems.push(`figure ${f.svg} is not an SVG`);
    const png = readFileSync(join(dir, f.png));
    if (png.readUInt32BE(0) !== 0x89504e47) problems.push(`figure ${f.png} is not a PNG`);
  }
}
const MARKS = new Set(['✓', '≈', '✗', null]);
for (const s of results.sections) {
  for (const r of s.summary) {
    if (!MARKS.has(r.mark)) problems.push(`section ${s.id}, row '${r.metric}': mark ${JSON.stringify(r.mark)} (expected ✓, ≈, ✗ or null)`);
    if (typeof r.paper !== 'string' || typeof r.goal !== 'string')
      problems.push(`section ${s.id}, row '${r.metric}': needs the paper and goal columns (strings)`);
  }
}
const marked = (mark) =>
  results.sections.flatMap((s) => s.summary.filter((r) => r.mark === mark).map((r) => `${s.id}: ${r.metric} = ${r.value} (paper ${r.paper}; goal ${r.goal})`));
const shorts = marked('✗');
const unclear = marked('≈');
console.log(
  `report: ${results.sections.length} sections in ${results.seconds.toFixed(0)} s on ${results.adapter.name}; ${shorts.length} results against the goal (✗), ${unclear.length} not distinguishable (≈)`,
);
for (const s of shorts) console.log(`  ✗ ${s}`);
for (const s of unclear) console.log(`  ≈ ${s}`);
if (problems.length) {
  for (const p of problems) console.error(`report check: ${p}`);
  process.exit(1);
}
