/**
 * Tenant-style policy sets for `check-policies`: one role per tenant, policies spread over
 * 10 actions x 10 resource types. `sliced: false` writes the same rules with the action and
 * resource type in the condition instead of the scope, so no slicing is possible: the
 * difference between the two is what slicing buys.
 */
export const ACTIONS = 10;
export const TYPES = 10;

export function tenantPolicyFiles(count: number, sliced: boolean): Record<string, string> {
  const policies: string[] = [];
  for (let i = 0; i < count; i++) {
    const action = `a${i % ACTIONS}`;
    const type = `R${Math.floor(i / ACTIONS) % TYPES}`;
    policies.push(
      sliced
        ? `@id("tenant-${i}")\npermit (principal in Role::"tenant-${i}", action == Action::"${action}", resource is ${type});`
        : `@id("tenant-${i}")\npermit (principal in Role::"tenant-${i}", action, resource)\nwhen { action == Action::"${action}" && resource is ${type} };`,
    );
  }
  const routes = ['routes:'];
  for (let t = 0; t < TYPES; t++) {
    for (let a = 0; a < ACTIONS; a++) {
      routes.push(`  - match: { method: GET, path: "/R${t}/a${a}/{id}" }\n    action: a${a}\n    resource: { type: R${t}, id: "{id}" }`);
    }
  }
  return { 'tenants.cedar': `${policies.join('\n\n')}\n`, 'routes.yaml': `${routes.join('\n')}\n` };
}

/** A tenant whose policy allows GET /R<t>/a<a>/x, and that path. */
export function tenantRequest(count: number): { role: string; path: string } {
  const i = Math.max(0, count - 63); // a tenant near the end of the file
  return { role: `tenant-${i}`, path: `/R${Math.floor(i / ACTIONS) % TYPES}/a${i % ACTIONS}/x` };
}
