/** @file Formats report results: report.md (tables beside the paper's figures, embedded PNGs) and the terminal summary. */
import type { ReportResults, SectionRecord, SummaryRow } from './report';

/** ✓ the result supports the goal, ≈ cannot tell, ✗ supports the opposite, – nothing to judge. */
export function mark(m: SummaryRow['mark']): string {
  return m ?? '–';
}

/** Numbers to about four significant digits; very large or small ones in exponent form. */
export function formatValue(value: number | string): string {
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value) && Math.abs(value) < 1e7) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e5 || abs < 1e-3)) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

/** Pipes would end a Markdown cell and newlines the row. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function table(header: string[], rows: string[][]): string {
  const lines = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.map(cell).join(' | ')} |`);
  return lines.join('\n');
}

function tally(rows: SummaryRow[]): string {
  const judged = rows.filter((r) => r.mark !== null);
  if (!judged.length) return '–';
  const count = (m: string) => judged.filter((r) => r.mark === m).length;
  return [`${count('✓')}/${judged.length} ✓`, ...(['≈', '✗'] as const).filter((m) => count(m) > 0).map((m) => `${count(m)} ${m}`)].join(', ');
}

function sectionMarkdown(s: SectionRecord): string {
  const parts = [`## ${s.id} — ${s.title}`, '', `Reproduces: ${s.paperFigure}. Ran in ${s.seconds.toFixed(1)} s.`, ''];
  if (s.status === 'error') parts.push(`**Failed:** \`${s.error ?? 'unknown error'}\``, '');
  if (s.summary.length) {
    parts.push(
      table(
        ['metric', 'metagrad', 'paper', 'goal', ''],
        s.summary.map((r) => [r.metric, formatValue(r.value), r.paper, r.goal, mark(r.mark)]),
      ),
      '',
    );
  }
  for (const f of s.figures) {
    // The PNG shows inline in any Markdown viewer; the SVG link is the scalable copy.
    parts.push(`![${s.id}: ${f.name}](${encodeURI(f.png)})`, '', `[${f.name} (SVG)](${encodeURI(f.svg)})`, '');
  }
  return parts.join('\n');
}

export function formatMarkdown(r: ReportResults): string {
  const a = r.adapter;
  const overview = table(
    ['section', 'reproduces', 'result', 'time'],
    r.sections.map((s) => [
      `[${s.id}](#${anchor(s)}) ${s.title}`,
      s.paperFigure,
      s.status === 'error' ? 'failed' : tally(s.summary),
      `${s.seconds.toFixed(1)} s`,
    ]),
  );
  return [
    '# metagrad report',
    '',
    `${r.mode === 'quick' ? 'Quick' : 'Full'} run on **${a.name}** (backend ${a.backend}${a.description ? `, ${a.description}` : ''}), ${r.date}, ${r.seconds.toFixed(1)} s in all.`,
    'Columns: *paper* is what the paper reports, *goal* the threshold or claim we judge by. Marks: ✓ the result (its 95 % interval over seeds, where there are seeds) supports the goal, ≈ it cannot tell, ✗ it supports the opposite, – nothing to judge. Values `m [lo, hi]` are means over seeds with 95 % bootstrap intervals; raw numbers and paired differences are in `results.json`.',
    '',
    overview,
    '',
    ...r.sections.map(sectionMarkdown),
  ].join('\n');
}

/** GitHub's heading anchor for `## id — title`. */
function anchor(s: SectionRecord): string {
  return `${s.id} — ${s.title}`
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s-]/gu, '')
    .trim()
    .replace(/\s/g, '-');
}

/** The terminal summary's default width: it fits a 100-column terminal (and 80-column ones when asked). */
export const SUMMARY_WIDTH = 100;

/** Code points, the width a terminal gives the report's text (no wide CJK characters in it). */
const len = (text: string): number => [...text].length;

/** Word-wraps `text` into lines of at most `width` code points; a word longer than that is split. */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    let rest = [...word];
    while (rest.length > 0) {
      const room = line ? width - len(line) - 1 : width;
      if (rest.length <= room) {
        line = line ? `${line} ${rest.join('')}` : rest.join('');
        rest = [];
      } else if (line) {
        lines.push(line);
        line = '';
      } else {
        lines.push(rest.slice(0, width).join(''));
        rest = rest.slice(width);
      }
    }
  }
  if (line || lines.length === 0) lines.push(line);
  return lines;
}

/**
 * Column widths within `total`: each column its natural width, then the widest of the wrappable ones gives up a
 * column at a time (never below its minimum) until the row fits.
 */
function fitWidths(natural: number[], minimum: number[], wrappable: boolean[], total: number): number[] {
  const widths = [...natural];
  const sum = (): number => widths.reduce((a, b) => a + b, 0);
  while (sum() > total) {
    let widest = -1;
    for (let i = 0; i < widths.length; i++) {
      if (wrappable[i] && widths[i] > minimum[i] && (widest < 0 || widths[i] > widths[widest])) widest = i;
    }
    if (widest < 0) break;
    widths[widest]--;
  }
  return widths;
}

/**
 * The terminal summary: one result per row, columns aligned, at most `width` columns (default 100). Long metrics,
 * values and paper claims wrap inside their column; a wrapped row's further lines leave the section blank.
 */
export function formatSummaryTable(r: ReportResults, width = SUMMARY_WIDTH): string {
  const rows: string[][] = [];
  for (const s of r.sections) {
    if (s.status === 'error') rows.push([s.id, `FAILED: ${s.error ?? ''}`, '', '', '', '✗']);
    for (const row of s.summary) rows.push([s.id, row.metric, formatValue(row.value), row.paper, row.goal, mark(row.mark)]);
  }
  const header = ['section', 'metric', 'metagrad', 'paper', 'goal', ''];
  const gap = '  ';
  const natural = header.map((h, i) => Math.max(len(h), ...rows.map((row) => len(row[i]))));
  // section and mark keep their width; metric, value, paper and goal wrap (a value rarely needs to).
  const wrappable = [false, true, true, true, true, false];
  const minimum = [natural[0], 22, 14, 12, 8, natural[5]];
  const room = width - gap.length * (header.length - 1);
  let widths = fitWidths(natural, minimum, wrappable, room);
  // Narrow terminals: below the comfortable minimums rather than past the width.
  if (widths.reduce((a, b) => a + b, 0) > room) widths = fitWidths(widths, [natural[0], 6, 6, 5, 4, natural[5]], wrappable, room);
  const pad = (c: string, w: number): string => c + ' '.repeat(Math.max(0, w - len(c)));
  const fmt = (row: string[]): string[] => {
    const cells = row.map((c, i) => (i === 0 || i === 5 ? [c] : wrapText(c, widths[i])));
    const height = Math.max(...cells.map((c) => c.length));
    return Array.from({ length: height }, (_, k) =>
      cells
        .map((c, i) => pad(c[k] ?? '', widths[i]))
        .join(gap)
        .trimEnd(),
    );
  };
  return [
    `metagrad report (${r.mode}, ${r.adapter.name}, ${r.seconds.toFixed(1)} s)`,
    ...fmt(header),
    widths.map((w) => '-'.repeat(w)).join(gap),
    ...rows.flatMap(fmt),
  ].join('\n');
}
