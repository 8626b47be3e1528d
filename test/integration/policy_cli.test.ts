import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXAMPLE_POLICIES } from '../helpers/sidecar.js';
import { tempDir } from '../helpers/temp_dir.js';

const BIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });

function copyOfExample(): string {
  const dir = join(tempDir('pc-policy-cli'), 'policies');
  cpSync(EXAMPLE_POLICIES, dir, { recursive: true });
  return dir;
}

describe('portcullis policy validate', () => {
  it('accepts the example folder with a summary and exit code 0', () => {
    const r = run('policy', 'validate', EXAMPLE_POLICIES);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('ok: 6 policies, 7 routes, 5 entities, 6 slices, schema-validated\n');
    expect(r.stderr).toBe('');
  });

  it('prints file:line:col problems and exits 1 for a policy that breaks the schema', () => {
    const dir = copyOfExample();
    writeFileSync(join(dir, 'extra.cedar'), '\n@id("bad")\npermit (principal, action == Action::"read", resource is Document)\nwhen { resource.colour == "red" };\n');
    const r = run('policy', 'validate', dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^extra\.cedar:4:\d+ .*attribute `colour` on entity type `Document` not found/m);
  });

  it('reports routes naming unknown actions or types, and routes shadowed by earlier ones', () => {
    const dir = copyOfExample();
    const routes = readFileSync(join(dir, 'routes.yaml'), 'utf8');
    writeFileSync(join(dir, 'routes.yaml'), `${routes}  - match: { method: GET, path: "/documents/{id}" }\n    action: read\n    resource: { type: Document, id: "{id}" }\n`);
    const shadowed = run('policy', 'validate', dir);
    expect(shadowed.status).toBe(1);
    expect(shadowed.stderr).toContain('routes.yaml:28:5 routes.7: unreachable: "/documents/{id}" is shadowed by routes.4 "/documents/{id}" (routes.yaml:18:5)');
    expect(shadowed.stdout).toContain('problems found: 6 policies, 8 routes');
    writeFileSync(join(dir, 'routes.yaml'), `${routes}  - match: { path: /x }\n    action: fly\n    resource: { type: Plane, id: p }\n`);
    const unknown = run('policy', 'validate', dir);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain('routes.yaml:28:5 routes.7.action: unknown action "fly"');
    expect(unknown.stderr).toContain('routes.yaml:28:5 routes.7.resource.type: unknown entity type "Plane"');
  });

  it('reports broken entities.json and a missing folder', () => {
    const dir = copyOfExample();
    writeFileSync(join(dir, 'entities.json'), '[{"uid": {"type": "Spaceship", "id": "x"}, "attrs": {}, "parents": []}]');
    const r = run('policy', 'validate', dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('entities.json');
    const missing = run('policy', 'validate', join(dir, 'nope'));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('cannot read policy folder');
  });
});

describe('portcullis policy fmt', () => {
  it('finds the shipped example formatted', () => {
    const r = run('policy', 'fmt', '--check', EXAMPLE_POLICIES);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
  });

  it('reports unformatted files with --check, formats them without', () => {
    const dir = copyOfExample();
    const messy = '// keep me\n@id("x") permit(principal,action,resource is Document) when {resource has owner};\n';
    writeFileSync(join(dir, 'messy.cedar'), messy);
    const check = run('policy', 'fmt', '--check', dir);
    expect(check.status).toBe(1);
    expect(check.stdout).toBe('would reformat messy.cedar\n');
    expect(readFileSync(join(dir, 'messy.cedar'), 'utf8')).toBe(messy);
    const fix = run('policy', 'fmt', dir);
    expect(fix.status).toBe(0);
    const formatted = readFileSync(join(dir, 'messy.cedar'), 'utf8');
    expect(formatted).toContain('// keep me');
    expect(formatted).toContain('permit (\n  principal,\n  action,\n  resource is Document\n)');
    expect(run('policy', 'fmt', '--check', dir).status).toBe(0);
  });

  it('exits 1 with a position on a syntax error', () => {
    const dir = copyOfExample();
    writeFileSync(join(dir, 'broken.cedar'), 'permit (principal, action, resource)\nwhen { 1 + };\n');
    const r = run('policy', 'fmt', '--check', dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^broken\.cedar(:\d+:\d+)? /m);
  });
});

describe('portcullis policy test', () => {
  it('passes the example folder\'s own test suite, with full coverage', () => {
    const r = run('policy', 'test', EXAMPLE_POLICIES);
    expect(r.status, r.stdout).toBe(0);
    expect(r.stdout).toContain('PASS tests/documents.yaml › the owner cannot delete without MFA');
    expect(r.stdout).toMatch(/\n12 passed, 0 failed\n/);
    expect(r.stdout).toContain('coverage: policies never determining: none; routes never matched: none');
  });

  it('shows the expected and actual decision of a failing case and exits 1', () => {
    const dir = copyOfExample();
    writeFileSync(
      join(dir, 'tests', 'wrong.yaml'),
      'cases:\n  - name: viewers may delete (they may not)\n    principal: { claims: { sub: vic, roles: [viewer] } }\n    request: { method: DELETE, path: /documents/d2 }\n    expect: { decision: allow }\n',
    );
    const r = run('policy', 'test', dir);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('FAIL tests/wrong.yaml › viewers may delete (they may not)\n     expected allow\n     actual   deny 403 [delete-requires-mfa]');
    expect(r.stdout).toMatch(/\n12 passed, 1 failed\n/);
  });

  it('reports uncovered policies and routes, and prints JSON for machines', () => {
    const dir = copyOfExample();
    writeFileSync(join(dir, 'tests', 'documents.yaml'), 'cases:\n  - name: public\n    principal: { anonymous: true }\n    request: { method: GET, path: /public/x }\n    expect: { decision: allow, reasons: [public-read] }\n');
    const r = run('policy', 'test', '--json', dir);
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout) as { passed: number; failed: number; uncoveredPolicies: string[]; uncoveredRoutes: string[] };
    expect(report).toMatchObject({ passed: 1, failed: 0 });
    expect(report.uncoveredPolicies.sort()).toEqual(['admin-all', 'delete-requires-mfa', 'editor-write', 'owner-manage', 'viewer-read']);
    expect(report.uncoveredRoutes).toContain('GET|HEAD /documents/{id}');
    expect(report.uncoveredRoutes).not.toContain('GET|HEAD /public/**');
  });

  it('rejects a malformed test file naming the key path, and a folder without tests', () => {
    const dir = copyOfExample();
    writeFileSync(join(dir, 'tests', 'bad.yaml'), 'cases:\n  - name: no expectation\n    principal: { anonymous: true }\n    request: { method: GET, path: /x }\n');
    const r = run('policy', 'test', dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('tests/bad.yaml: cases.0.expect');
    const empty = copyOfExample();
    rmSync(join(empty, 'tests'), { recursive: true });
    const none = run('policy', 'test', empty);
    expect(none.status).toBe(1);
    expect(none.stderr).toContain('no test cases');
  });
});
