// Test case YAML checked as you type: YAML syntax first, then the JSON Schema the server
// publishes (docs/testcase.schema.json), each problem with its line.
import Ajv2020 from 'ajv/dist/2020';
import { isNode, LineCounter, parseDocument } from 'yaml';
import schema from '../../docs/testcase.schema.json';

const ajv = new Ajv2020({ allErrors: true, strict: false });
const check = ajv.compile(schema);

export type Problem = { line: number; message: string };

export function validateTestCase(text: string): Problem[] {
  if (!text.trim()) return [{ line: 1, message: 'empty: a test case needs a name and steps' }];
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    return doc.errors.map((e) => ({
      line: lines.linePos(e.pos[0]).line,
      message: e.message.split('\n')[0],
    }));
  }
  const value = doc.toJS();
  if (check(value)) return [];
  const seen = new Set<string>();
  const problems: Problem[] = [];
  for (const err of check.errors ?? []) {
    const path = err.instancePath.split('/').filter(Boolean).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
    let node: unknown = doc.getIn(path, true);
    // The closest node that exists gives the line.
    for (let n = path.length; !isNode(node) && n > 0; n--) node = doc.getIn(path.slice(0, n - 1), true);
    const offset = isNode(node) && node.range ? node.range[0] : 0;
    const where = err.instancePath || '(document)';
    const extra =
      err.keyword === 'additionalProperties'
        ? ` (${(err.params as { additionalProperty: string }).additionalProperty})`
        : err.keyword === 'enum'
          ? `: ${(err.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`
          : '';
    const message = `${where} ${err.message}${extra}`;
    if (seen.has(message)) continue;
    seen.add(message);
    problems.push({ line: lines.linePos(offset).line, message });
  }
  return problems;
}
