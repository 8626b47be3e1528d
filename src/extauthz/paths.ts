/** gRPC path of Envoy's ext_authz Check (a module of its own: importing it loads nothing else). */
export const AUTHORIZATION_CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';
