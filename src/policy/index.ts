export { loadPolicyBundle, type PolicyBundle } from './load.js';
export { createPolicyEngine, type PolicyEngine, type ActivePolicySet, type CedarRequest, type EvaluationResult } from './engine.js';
export { createPolicyRuntime, type PolicyRuntime } from './runtime.js';
export { matchRoute, type RouteMatch, type RouteTarget } from './routes.js';
export { PRINCIPAL_TYPE, ROLE_TYPE, ACTION_TYPE, ANONYMOUS_ID } from './vocabulary.js';
export { isEmptyEntity, type EntityStore } from './entities.js';
export type { SchemaInfo } from './schema.js';
export type { CedarValueJson, EntityJson, CedarContext } from './cedar.js';
