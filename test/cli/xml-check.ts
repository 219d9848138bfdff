/** @file Test helper: a small XML well-formedness check (balanced tags, quoted attributes, valid entities), so SVG tests need no XML library. */

/** Returns the root element's name, or throws with the first problem found. */
export function checkWellFormedXml(xml: string): string {
  const body = xml
    .replace(/^\s*<\?xml[^?]*\?>/, '')
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, '');
  const tag = /<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/y;
  const stack: string[] = [];
  let root: string | undefined;
  let i = 0;
  while (i < body.length) {
    const lt = body.indexOf('<', i);
    const text = body.slice(i, lt === -1 ? body.length : lt);
    checkEntities(text);
    if (text.trim() && stack.length === 0) throw new Error(`text outside the root element: '${text.trim().slice(0, 40)}'`);
    if (lt === -1) break;
    tag.lastIndex = lt;
    const m = tag.exec(body);
    if (!m) throw new Error(`malformed tag at ${lt}: '${body.slice(lt, lt + 60)}'`);
    const [, closing, name, attrs, selfClosing] = m;
    checkEntities(attrs);
    if (closing) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open ?? 'nothing'}>`);
    } else {
      if (stack.length === 0) {
        if (root !== undefined) throw new Error(`second root element <${name}>`);
        root = name;
      }
      if (!selfClosing) stack.push(name);
    }
    i = tag.lastIndex;
  }
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`);
  if (root === undefined) throw new Error('no root element');
  return root;
}

function checkEntities(text: string): void {
  const bad = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.exec(text);
  if (bad) throw new Error(`bare '&' in '${text.slice(Math.max(0, bad.index - 20), bad.index + 20)}'`);
}
