import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configReferenceMarkdown } from '../../src/config/index.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('embeds the configuration reference generated from the schema', () => {
    const start = readme.indexOf('<!-- config-reference:start');
    const end = readme.indexOf('<!-- config-reference:end -->');
    expect(start).toBeGreaterThan(-1);
    const block = readme.slice(readme.indexOf('\n', start) + 1, end).trim();
    expect(block).toBe(configReferenceMarkdown());
  });

  it('shows the two fresh-machine commands', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm ci && npm test');
  });
});
