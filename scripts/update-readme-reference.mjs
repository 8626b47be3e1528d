// Rewrites the configuration reference block of README.md from the built schema
// (`npm run build` first). test/integration/readme.test.ts checks the two agree.
import { readFileSync, writeFileSync } from 'node:fs';
import { configReferenceMarkdown } from '../dist/config/index.js';

const file = new URL('../README.md', import.meta.url);
const readme = readFileSync(file, 'utf8');
const start = readme.indexOf('\n', readme.indexOf('<!-- config-reference:start')) + 1;
const end = readme.indexOf('<!-- config-reference:end -->');
if (start <= 0 || end < start) throw new Error('README.md has no config-reference block');
writeFileSync(file, `${readme.slice(0, start)}${configReferenceMarkdown()}\n${readme.slice(end)}`);
