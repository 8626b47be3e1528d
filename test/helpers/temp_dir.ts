import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const made: string[] = [];
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A temporary folder holding the given files, removed after the test file. */
export function tempDir(prefix: string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  made.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** routes.yaml mapping every path to Action "call" on Svc::"any". */
export function catchAllRoutes(anonymous: boolean): string {
  return `routes:\n  - match: { path: "/**" }\n    action: call\n    resource: { type: Svc, id: any }\n    anonymous: ${anonymous}\n`;
}
