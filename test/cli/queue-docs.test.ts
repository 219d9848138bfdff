/**
 * @file docs/SCALE-OUT.md: its Kubernetes manifests parse (a small YAML subset parser below: block mappings and
 * sequences, plain/quoted scalars, JSON-style flow collections, literal and folded block scalars; the `yaml` package
 * is not a dependency here) and hang together (selectors match labels, the workers reach the Redis Service, the
 * Indexed Job's shard count equals its completions), and the queue flags the document names exist.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { queueCommandFlags } from '../../apps/cli/src/queue/register';

type Yaml = string | number | boolean | null | Yaml[] | { [k: string]: Yaml };
interface Line {
  indent: number;
  text: string;
  no: number;
}

/** Drops a trailing ` # comment` outside quotes and brackets. */
function stripComment(s: string): string {
  let quote = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || s[i - 1] === ' ')) return s.slice(0, i).trimEnd();
  }
  return s;
}

function scalar(s: string, no: number): Yaml {
  const t = s.trim();
  if (t.startsWith('[') || t.startsWith('{') || t.startsWith('"')) {
    try {
      return JSON.parse(t) as Yaml;
    } catch {
      throw new Error(`line ${no}: not a JSON-style flow value: ${t}`);
    }
  }
  if (t.startsWith("'")) {
    if (!t.endsWith("'") || t.length < 2) throw new Error(`line ${no}: unterminated quote: ${t}`);
    return t.slice(1, -1).replace(/''/g, "'");
  }
  if (t === 'true' || t === 'false') return t === 'true';
  if (t === 'null' || t === '~' || t === '') return null;
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  if (/^[&*!|>]/.test(t)) throw new Error(`line ${no}: unsupported YAML here: ${t}`);
  return t;
}

/** Parses one YAML document of the subset; throws with a line number on anything else. */
export function parseYaml(source: string, firstLine = 1): Yaml {
  const lines: Line[] = [];
  source.split('\n').forEach((raw, i) => {
    if (raw.includes('\t')) throw new Error(`line ${firstLine + i}: tab character`);
    const text = stripComment(raw);
    if (text.trim() === '') return;
    lines.push({ indent: text.length - text.trimStart().length, text: text.trim(), no: firstLine + i });
  });
  let i = 0;
  const isItem = (l: Line): boolean => l.text === '-' || l.text.startsWith('- ');
  const mapKey = (text: string): { key: string; rest: string } | undefined => {
    const m = /^("[^"]*"|'[^']*'|[^\s"'#:[\]{},][^:]*?):(?:\s+(.*))?$/.exec(text);
    return m ? { key: m[1].replace(/^["']|["']$/g, ''), rest: m[2] ?? '' } : undefined;
  };
  const blockScalar = (style: string, parent: number): string => {
    const body: string[] = [];
    let indent = -1;
    while (i < lines.length && lines[i].indent > parent) {
      if (indent < 0) indent = lines[i].indent;
      body.push(' '.repeat(Math.max(0, lines[i].indent - indent)) + lines[i].text);
      i++;
    }
    const joined = style.startsWith('|') ? body.join('\n') : body.join(' ');
    return style.endsWith('-') ? joined : `${joined}\n`;
  };
  const value = (rest: string, parent: number, no: number): Yaml => {
    if (/^[|>][-+]?$/.test(rest)) return blockScalar(rest, parent);
    if (rest !== '') return scalar(rest, no);
    if (i < lines.length && lines[i].indent > parent) return block(lines[i].indent);
    if (i < lines.length && lines[i].indent === parent && isItem(lines[i])) return sequence(parent);
    return null;
  };
  const mapping = (indent: number): { [k: string]: Yaml } => {
    const out: { [k: string]: Yaml } = {};
    while (i < lines.length && lines[i].indent === indent && !isItem(lines[i])) {
      const line = lines[i];
      const kv = mapKey(line.text);
      if (!kv) throw new Error(`line ${line.no}: expected 'key: value', got '${line.text}'`);
      if (Object.hasOwn(out, kv.key)) throw new Error(`line ${line.no}: duplicate key '${kv.key}'`);
      i++;
      out[kv.key] = value(kv.rest, indent, line.no);
    }
    if (i < lines.length && lines[i].indent > indent) throw new Error(`line ${lines[i].no}: unexpected indentation`);
    return out;
  };
  const sequence = (indent: number): Yaml[] => {
    const out: Yaml[] = [];
    while (i < lines.length && lines[i].indent === indent && isItem(lines[i])) {
      const line = lines[i];
      const rest = line.text.slice(1).trimStart();
      if (rest === '') {
        i++;
        out.push(i < lines.length && lines[i].indent > indent ? block(lines[i].indent) : null);
      } else if (/^[|>][-+]?$/.test(rest)) {
        i++;
        out.push(blockScalar(rest, indent));
      } else if (mapKey(rest) && !/^["'[{]/.test(rest)) {
        // `- key: value` starts a mapping two columns in.
        lines[i] = { indent: indent + 2, text: rest, no: line.no };
        out.push(mapping(indent + 2));
      } else {
        i++;
        out.push(scalar(rest, line.no));
      }
    }
    return out;
  };
  const block = (indent: number): Yaml => (isItem(lines[i]) ? sequence(indent) : mapping(indent));
  if (lines.length === 0) return null;
  const doc = block(lines[0].indent);
  if (i < lines.length) throw new Error(`line ${lines[i].no}: unexpected '${lines[i].text}'`);
  return doc;
}

/** The ```yaml blocks of a Markdown file, split into documents at `---`. */
function yamlDocuments(markdown: string): { doc: Yaml; line: number }[] {
  const docs: { doc: Yaml; line: number }[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '```yaml') continue;
    let start = i + 1;
    let j = start;
    for (; j < lines.length && lines[j].trim() !== '```'; j++) {
      if (lines[j].trim() === '---') {
        docs.push({ doc: parseYaml(lines.slice(start, j).join('\n'), start + 1), line: start + 1 });
        start = j + 1;
      }
    }
    docs.push({ doc: parseYaml(lines.slice(start, j).join('\n'), start + 1), line: start + 1 });
    i = j;
  }
  return docs;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

describe('docs/SCALE-OUT.md', () => {
  const md = readFileSync('docs/SCALE-OUT.md', 'utf8');

  it('the YAML subset parser reads what it claims and rejects the rest', () => {
    expect(parseYaml('a: 1\nb:\n  - x\n  - k: v\n    j: "q"\nc: [1, "2"]\nd: {}\ne: >-\n  one\n  two\nf: |\n  l1\n  l2\n')).toEqual({
      a: 1,
      b: ['x', { k: 'v', j: 'q' }],
      c: [1, '2'],
      d: {},
      e: 'one two',
      f: 'l1\nl2\n',
    });
    expect(parseYaml('k:\n- a\n- b # comment\n')).toEqual({ k: ['a', 'b'] });
    expect(parseYaml('k:\n  - >-\n    x\n    y\n  - z\n')).toEqual({ k: ['x y', 'z'] });
    expect(() => parseYaml('a: 1\n   b: 2\n')).toThrow(/line 2/);
    expect(() => parseYaml('a: 1\na: 2\n')).toThrow(/duplicate key 'a'/);
    expect(() => parseYaml('a:\n\tb: 1\n')).toThrow(/tab/);
    expect(() => parseYaml('a: [1, 2\n')).toThrow(/flow value/);
  });

  it('Kubernetes manifests: workers as a Deployment reaching the Redis Service, shards as an Indexed Job', () => {
    const docs = yamlDocuments(md).map((d) => d.doc as Any);
    for (const d of docs) {
      expect(typeof d.apiVersion, JSON.stringify(d)).toBe('string');
      expect(typeof d.kind).toBe('string');
      expect(typeof d.metadata?.name).toBe('string');
    }
    const find = (kind: string, name: string): Any => {
      const d = docs.find((x) => x.kind === kind && x.metadata.name === name);
      expect(d, `${kind} ${name}`).toBeDefined();
      return d;
    };
    for (const name of ['metagrad-redis', 'metagrad-worker']) {
      const dep = find('Deployment', name);
      expect(dep.apiVersion).toBe('apps/v1');
      expect(dep.spec.template.metadata.labels).toMatchObject(dep.spec.selector.matchLabels);
      expect(dep.spec.template.spec.containers.length).toBeGreaterThan(0);
    }
    const service = find('Service', 'metagrad-redis');
    const redis = find('Deployment', 'metagrad-redis');
    expect(redis.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    expect(redis.spec.template.spec.containers[0].args).toContain('noeviction');
    const port = service.spec.ports[0].port as number;

    const worker = find('Deployment', 'metagrad-worker');
    expect(worker.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(30);
    const args = worker.spec.template.spec.containers[0].args as string[];
    expect(args[0]).toBe('worker');
    const url = new URL(args[args.indexOf('--redis') + 1]);
    expect(url.hostname).toBe(service.metadata.name);
    expect(Number(url.port)).toBe(port);
    // Every flag the manifest gives the worker is one the worker command has.
    const workerFlags = queueCommandFlags().worker;
    for (const a of args.filter((x) => x.startsWith('--'))) expect(workerFlags).toContain(a);

    const job = find('Job', 'metagrad-e5');
    expect(job.apiVersion).toBe('batch/v1');
    expect(job.spec.completionMode).toBe('Indexed');
    expect(job.spec.template.spec.restartPolicy).toBe('Never');
    const script = (job.spec.template.spec.containers[0].args as string[]).join(' ');
    const shards = /--shard \$\(\(JOB_COMPLETION_INDEX \+ 1\)\)\/(\d+)/.exec(script);
    expect(shards, script).not.toBeNull();
    expect(Number(shards![1])).toBe(job.spec.completions);
    expect(script).toMatch(/--no-merge/);
    const mount = job.spec.template.spec.containers[0].volumeMounts[0];
    expect(job.spec.template.spec.volumes.map((v: Any) => v.name)).toContain(mount.name);
    expect(script).toContain(`--out ${mount.mountPath}/`);
  });

  it('the worker and run --redis flags the document names exist', () => {
    const { worker, run } = queueCommandFlags();
    const flags = new Set([...worker, ...run]);
    const section = md.slice(md.indexOf('## 3. A queue'), md.indexOf('## 4. Kubernetes'));
    const named = [...section.matchAll(/`(--[a-z-]+)/g)].map((m) => m[1]);
    const local = new Set(['--jobs', '--shard', '--seeds', '--no-merge', '--extras']);
    expect(named.length).toBeGreaterThan(10);
    for (const f of named) if (!local.has(f)) expect(flags, f).toContain(f);
  });
});
