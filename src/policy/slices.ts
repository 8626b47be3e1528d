import { uidKey, type EntityUidJson, type PolicyJson } from './cedar.js';
import type { PolicyRecord } from './policy_set.js';
import { ACTION_TYPE } from './vocabulary.js';


export function sliceKey(action: string, resourceType: string): string {
  return `${uidKey(ACTION_TYPE, action)}|${resourceType}`;
}

/**
 * The policies that can apply to a request for `action` on a resource of `resourceType`,
 * judged from each policy's scope alone. Conservative: a policy is left out only when its
 * scope rules the request out (a different action, a different resource type).
 */
export function selectSlice(
  policies: readonly PolicyRecord[],
  action: string,
  resourceType: string,
  actionAncestors: ReadonlyMap<string, ReadonlySet<string>>,
): PolicyRecord[] {
  const actionKey = uidKey(ACTION_TYPE, action);
  const groups = actionAncestors.get(actionKey);
  const isAction = (uid: EntityUidJson) => {
    const u = plain(uid);
    const key = uidKey(u.type, u.id);
    return key === actionKey || (groups?.has(key) ?? false);
  };
  return policies.filter((p) => actionApplies(p.scope.action, isAction) && resourceApplies(p.scope.resource, resourceType));
}

function actionApplies(c: PolicyJson['action'], isAction: (uid: EntityUidJson) => boolean): boolean {
  switch (c.op) {
    case 'All':
      return true;
    case '==':
      return 'entity' in c ? isAction(c.entity) : true;
    case 'in':
      return 'entity' in c ? isAction(c.entity) : c.entities.some(isAction);
  }
}

function resourceApplies(c: PolicyJson['resource'], resourceType: string): boolean {
  switch (c.op) {
    case 'All':
    case 'in':
      return true;
    case '==':
      return 'entity' in c ? plain(c.entity).type === resourceType : true;
    case 'is':
      return c.entity_type === resourceType;
  }
}

function plain(uid: EntityUidJson): { type: string; id: string } {
  return '__entity' in uid ? uid.__entity : uid;
}
