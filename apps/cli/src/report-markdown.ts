/** @file Formats report results: report.md (tables beside the paper's figures, embedded PNGs) and the terminal summary. */
import type { ReportResults, SectionRecord, SummaryRow } from './report';

/** ✓ reproduces the paper's claim, ✗ falls short, – nothing to judge. */
export function mark(pass: boolean | null): string {
  return pass === null ? '–' : pass ? '✓' : '✗';
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
  const judged = rows.filter((r) => r.pass !== null);
  return judged.length ? `${judged.filter((r) => r.pass).length}/${judged.length} ✓` : '–';
}

function sectionMarkdown(s: SectionRecord): string {
  const parts = [`## ${s.id} — ${s.title}`, '', `Reproduces: ${s.paperFigure}. Ran in ${s.seconds.toFixed(1)} s.`, ''];
  if (s.status === 'error') parts.push(`**Failed:** \`${s.error ?? 'unknown error'}\``, '');
  if (s.summary.length) {
    parts.push(table(['metric', 'metagrad', 'paper', ''], s.summary.map((r) => [r.metric, formatValue(r.value), r.paper, mark(r.pass)])), '');
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
    r.sections.map((s) => [`[${s.id}](#${anchor(s)}) ${s.title}`, s.paperFigure, s.status === 'error' ? 'failed' : tally(s.summary), `${s.seconds.toFixed(1)} s`]),
  );
  return [
    '# metagrad report',
    '',
    `${r.mode === 'quick' ? 'Quick' : 'Full'} run on **${a.name}** (backend ${a.backend}${a.description ? `, ${a.description}` : ''}), ${r.date}, ${r.seconds.toFixed(1)} s in all.`,
    'Marks: ✓ reproduces the paper, ✗ falls short, – nothing to compare. Raw numbers are in `results.json`.',
    '',
    overview,
    '',
    ...r.sections.map(sectionMarkdown),
  ].join('\n');
}

/** GitHub's heading anchor for `## id — title`. */
function anchor(s: SectionRecord): string {
  return `${s.id} — ${s.title}`.toLowerCase().replace(/[^\p{L}\p{N}\s-]/gu, '').trim().replace(/\s/g, '-');
}

/** The terminal summary: one line per result, columns aligned. */
export function formatSummaryTable(r: ReportResults): string {
  const rows: string[][] = [];
  for (const s of r.sections) {
    if (s.status === 'error') rows.push([s.id, `FAILED: ${(s.error ?? '').slice(0, 70)}`, '', '', '✗']);
    for (const row of s.summary) rows.push([s.id, row.metric, formatValue(row.value), row.paper, mark(row.pass)]);
  }
  const header = ['section', 'metric', 'metagrad', 'paper', ''];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => [...row[i]].length)));
  const fmt = (row: string[]): string => row.map((c, i) => c + ' '.repeat(widths[i] - [...c].length)).join('  ').trimEnd();
  return [`metagrad report (${r.mode}, ${r.adapter.name}, ${r.seconds.toFixed(1)} s)`, fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...rows.map(fmt)].join('\n');
}
