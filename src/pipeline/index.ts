export { createDecider, type Decider, type DeciderOptions } from './decide.js';
export { parseRequestPath, type ParsedPath } from './request_path.js';
export { denialBody, upstreamHeaders, type UpstreamHeaders } from './responses.js';
export type { AuthzInput, Decision, Allow, Deny, DenyReason } from './types.js';
