import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateTestCase } from './validate';

const samples = join(__dirname, '../../samples/testcases');

describe('test case validation as you type', () => {
  it('accepts every sample test case', () => {
    const files = readdirSync(samples).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThanOrEqual(5);
    for (const f of files) {
      expect([f, validateTestCase(readFileSync(join(samples, f), 'utf8'))]).toEqual([f, []]);
    }
  });

  it('points at the line of a YAML syntax error', () => {
    const problems = validateTestCase('name: x\nsteps:\n  - press: ok\n   bad: [\n');
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0].line).toBeGreaterThanOrEqual(3);
  });

  it('points at the line of a schema violation and names the offending key', () => {
    const text = 'name: Broken\ndevice_model: sim-stb\nsteps:\n  - press: ok\n  - teleport: home\n';
    const problems = validateTestCase(text);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.some((p) => p.line === 5)).toBe(true);
  });

  it('says what is missing from an empty or nameless document', () => {
    expect(validateTestCase('')[0].message).toMatch(/empty/);
    const problems = validateTestCase('steps:\n  - press: ok\n');
    expect(problems.some((p) => /name/.test(p.message))).toBe(true);
  });
});
