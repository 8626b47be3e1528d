#!/usr/bin/env node
import { Command } from 'commander';
import { registerServe } from './serve.js';
import { registerToken } from './token.js';
import { registerCheck } from './check.js';
import { registerConfig } from './config.js';
import { registerHealth } from './health.js';
import { registerPolicy } from './policy.js';
import { registerUsers } from './users.js';
import { registerClients } from './clients.js';
import { registerKeys } from './keys.js';
import { registerAudit } from './audit.js';
import { registerStore } from './store.js';

const program = new Command()
  .name('portcullis')
  .description('Policy-engine-centric authorization sidecar: Envoy ext_authz, JWT validation, Cedar policies')
  .showHelpAfterError();

registerServe(program);
registerCheck(program);
registerToken(program);
registerConfig(program);
registerHealth(program);
registerPolicy(program);
registerUsers(program);
registerClients(program);
registerKeys(program);
registerAudit(program);
registerStore(program);

await program.parseAsync(process.argv);
