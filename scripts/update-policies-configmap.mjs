// Rewrites the data of deploy/kubernetes/policies.yaml from the example policies/ folder (its
// files; tests/ is not deployed), keeping the header comment and metadata.
// test/deploy/kubernetes.test.ts checks that the two agree.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';

const root = new URL('../', import.meta.url).pathname;
const file = join(root, 'deploy/kubernetes/policies.yaml');
const dir = join(root, 'policies');
const doc = parseDocument(readFileSync(file, 'utf8'));
const data = Object.fromEntries(
  readdirSync(dir)
    .filter((name) => statSync(join(dir, name)).isFile())
    .sort()
    .map((name) => [name, readFileSync(join(dir, name), 'utf8')]),
);
doc.set('data', doc.createNode(data));
for (const pair of doc.get('data').items) pair.value.type = 'BLOCK_LITERAL';
writeFileSync(file, doc.toString({ lineWidth: 0 }));
