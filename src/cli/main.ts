#!/usr/bin/env node
import { Command } from 'commander';

/**
 * Each top-level command and the module that registers it. Only the invoked command's module is
 * loaded (an administration command does not load the gRPC server, cedar-wasm or OpenTelemetry);
 * help, version and unknown commands load them all.
 */
const COMMANDS: Record<string, () => Promise<(program: Command) => void>> = {
  serve: async () => (await import('./serve.js')).registerServe,
  check: async () => (await import('./check.js')).registerCheck,
  token: async () => (await import('./token.js')).registerToken,
  config: async () => (await import('./config.js')).registerConfig,
  health: async () => (await import('./health.js')).registerHealth,
  policy: async () => (await import('./policy.js')).registerPolicy,
  users: async () => (await import('./users.js')).registerUsers,
  clients: async () => (await import('./clients.js')).registerClients,
  keys: async () => (await import('./keys.js')).registerKeys,
  audit: async () => (await import('./audit.js')).registerAudit,
  store: async () => (await import('./store.js')).registerStore,
};

const program = new Command()
  .name('portcullis')
  .description('Policy-engine-centric authorization sidecar: Envoy ext_authz, JWT validation, Cedar policies')
  .showHelpAfterError();

const invoked = process.argv[2];
const wanted = invoked !== undefined && Object.hasOwn(COMMANDS, invoked) ? [COMMANDS[invoked]!] : Object.values(COMMANDS);
for (const register of await Promise.all(wanted.map((load) => load()))) register(program);

await program.parseAsync(process.argv);
