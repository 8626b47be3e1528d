import { describe, expect, it } from 'vitest';
import { parsePolicyFile } from '../../../src/policy/policy_set.js';
import { selectSlice, sliceKey } from '../../../src/policy/slices.js';

// Two files of at most ten policies each, so the order cedar returns them in is the file order.
const policies = [
  ...parsePolicyFile(
    'actions.cedar',
    `@id("read-eq") permit(principal, action == Action::"read", resource);
@id("read-or-write") permit(principal, action in [Action::"read", Action::"write"], resource);
@id("in-readers") permit(principal, action in Action::"readers", resource);
@id("in-list-with-group") permit(principal, action in [Action::"delete", Action::"readers"], resource);
`,
  ),
  ...parsePolicyFile(
    'resources.cedar',
    `@id("doc-is") permit(principal, action, resource is Document);
@id("folder-is") permit(principal, action, resource is Folder);
@id("doc-eq") permit(principal, action, resource == Document::"d1");
@id("folder-eq") permit(principal, action, resource == Folder::"f1");
@id("in-folder") permit(principal, action, resource in Folder::"f1");
@id("doc-is-in-folder") permit(principal, action, resource is Document in Folder::"f1");
@id("any") forbid(principal, action, resource) when { context.blocked };
@id("write-folder") permit(principal, action == Action::"write", resource is Folder);
`,
  ),
];

/** `Action::"read"` belongs to `readers`, which belongs to `everything`. */
const ancestors = new Map<string, ReadonlySet<string>>([
  ['Action::"read"', new Set(['Action::"readers"', 'Action::"everything"'])],
  ['Action::"readers"', new Set(['Action::"everything"'])],
  ['Action::"write"', new Set<string>()],
]);

const slice = (action: string, resourceType: string, actionAncestors: ReadonlyMap<string, ReadonlySet<string>> = ancestors) =>
  selectSlice(policies, action, resourceType, actionAncestors).map((p) => p.id);

describe('selectSlice', () => {
  it('keeps a policy whose action == the requested action and leaves it out for other actions', () => {
    expect(slice('read', 'Document')).toContain('read-eq');
    expect(slice('write', 'Document')).not.toContain('read-eq');
  });

  it('keeps a policy listing the action in `action in [..]`', () => {
    expect(slice('read', 'Document')).toContain('read-or-write');
    expect(slice('write', 'Document')).toContain('read-or-write');
    expect(slice('delete', 'Document')).not.toContain('read-or-write');
  });

  it('resolves action groups through the ancestors map', () => {
    expect(slice('read', 'Document')).toContain('in-readers');
    expect(slice('read', 'Document')).toContain('in-list-with-group');
    expect(slice('write', 'Document')).not.toContain('in-readers');
    // Without the ancestors map the group membership is unknown and the policy is left out.
    expect(slice('read', 'Document', new Map())).not.toContain('in-readers');
  });

  it('filters on `resource is` by type', () => {
    expect(slice('read', 'Document')).toContain('doc-is');
    expect(slice('read', 'Document')).not.toContain('folder-is');
    expect(slice('read', 'Folder')).toContain('folder-is');
    expect(slice('read', 'Folder')).not.toContain('doc-is');
    expect(slice('read', 'Document')).toContain('doc-is-in-folder');
    expect(slice('read', 'Folder')).not.toContain('doc-is-in-folder');
  });

  it('filters on `resource ==` by the type of the named entity', () => {
    expect(slice('read', 'Document')).toContain('doc-eq');
    expect(slice('read', 'Document')).not.toContain('folder-eq');
    expect(slice('read', 'Folder')).toContain('folder-eq');
  });

  it('conservatively keeps `resource in` policies for every resource type', () => {
    expect(slice('read', 'Document')).toContain('in-folder');
    expect(slice('read', 'Folder')).toContain('in-folder');
    expect(slice('anything', 'Widget')).toContain('in-folder');
  });

  it('always keeps unconstrained policies', () => {
    expect(slice('read', 'Document')).toContain('any');
    expect(slice('unheard-of', 'Widget')).toContain('any');
  });

  it('returns exactly the applicable policies in file order', () => {
    expect(slice('read', 'Document')).toEqual(['read-eq', 'read-or-write', 'in-readers', 'in-list-with-group', 'doc-is', 'doc-eq', 'in-folder', 'doc-is-in-folder', 'any']);
    expect(slice('write', 'Folder')).toEqual(['read-or-write', 'folder-is', 'folder-eq', 'in-folder', 'any', 'write-folder']);
    expect(slice('delete', 'Widget')).toEqual(['in-list-with-group', 'in-folder', 'any']);
  });

  it('keys slices by action uid and resource type', () => {
    expect(sliceKey('read', 'Document')).toBe('Action::"read"|Document');
    expect(sliceKey('read', 'Document')).not.toBe(sliceKey('read', 'Folder'));
  });
});
