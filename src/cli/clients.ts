import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { addClient, removeClient } from '../issuer/clients.js';
import { PortcullisError } from '../lib/errors.js';
import type { ClientAuthMethod, GrantType } from '../store/index.js';
import { action } from './fail.js';
import { withTokenModule } from './token_module.js';

const list = (value: string, previous: string[] = []) => [...previous, ...value.split(/[ ,]/).map((s) => s.trim()).filter(Boolean)];
const GRANTS: GrantType[] = ['authorization_code', 'refresh_token', 'client_credentials'];
const METHODS: ClientAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'];

interface AddOptions {
  type: string;
  authMethod?: string;
  grant: string[];
  redirectUri: string[];
  scope: string[];
  role: string[];
  firstParty?: boolean;
  name?: string;
  jwksFile?: string;
  config?: string;
}

export function registerClients(program: Command): void {
  const clients = program.command('clients').description('OAuth clients of the token module');
  clients
    .command('add <client_id>')
    .description('register a client; a generated secret is printed once (stored only as a hash)')
    .option('--type <type>', 'confidential or public', 'confidential')
    .option('--auth-method <method>', `token endpoint authentication: ${METHODS.join(', ')}`)
    .option('--grant <grant>', `allowed grant (repeat or comma-separate): ${GRANTS.join(', ')}`, list, [])
    .option('--redirect-uri <uri>', 'exact redirect URI (repeat)', list, [])
    .option('--scope <scope>', 'allowed scope (repeat or comma/space-separate)', list, [])
    .option('--role <role>', 'roles of client_credentials tokens (repeat)', list, [])
    .option('--first-party', 'trusted first-party app: no consent page, may use POST /login')
    .option('--name <name>', 'name shown on the consent page')
    .option('--jwks-file <file>', 'public JWKS of the client (private_key_jwt)')
    .option('-c, --config <file>', 'YAML config file')
    .action(
      action(async (clientId: string, opts: AddOptions) => {
        if (opts.type !== 'confidential' && opts.type !== 'public') throw new PortcullisError('ERR_BAD_REQUEST', '--type must be confidential or public');
        if (opts.authMethod && !METHODS.includes(opts.authMethod as ClientAuthMethod)) throw new PortcullisError('ERR_BAD_REQUEST', `--auth-method must be one of ${METHODS.join(', ')}`);
        const bad = opts.grant.find((g) => !GRANTS.includes(g as GrantType));
        if (bad) throw new PortcullisError('ERR_BAD_REQUEST', `unknown grant ${bad}; use ${GRANTS.join(', ')}`);
        if (opts.grant.length === 0) throw new PortcullisError('ERR_BAD_REQUEST', 'name at least one --grant');
        const jwks = opts.jwksFile ? (JSON.parse(readFileSync(opts.jwksFile, 'utf8')) as { keys: Record<string, unknown>[] }) : undefined;
        await withTokenModule(opts.config, async ({ ctx }) => {
          const { client, secret } = await addClient(ctx, {
            clientId,
            name: opts.name,
            type: opts.type as 'confidential' | 'public',
            authMethod: opts.authMethod as ClientAuthMethod | undefined,
            grantTypes: opts.grant as GrantType[],
            redirectUris: opts.redirectUri,
            scopes: opts.scope,
            roles: opts.role,
            firstParty: opts.firstParty ?? false,
            jwks,
          });
          process.stdout.write(`${JSON.stringify({ client_id: client.clientId, client_secret: secret, token_endpoint_auth_method: client.authMethod, grant_types: client.grantTypes })}\n`);
        });
      }),
    );
  clients
    .command('list')
    .description('list clients (JSON lines, no secrets)')
    .option('-c, --config <file>', 'YAML config file')
    .action(
      action(async (opts: { config?: string }) => {
        await withTokenModule(opts.config, async ({ ctx }) => {
          for (const c of await ctx.store.clients.list()) {
            process.stdout.write(`${JSON.stringify({ client_id: c.clientId, name: c.name, type: c.type, token_endpoint_auth_method: c.authMethod, grant_types: c.grantTypes, redirect_uris: c.redirectUris, scopes: c.scopes, roles: c.roles, first_party: c.firstParty })}\n`);
          }
        });
      }),
    );
  clients
    .command('remove <client_id>')
    .description('remove a client')
    .option('-c, --config <file>', 'YAML config file')
    .action(
      action(async (clientId: string, opts: { config?: string }) => {
        const removed = await withTokenModule(opts.config, ({ ctx }) => removeClient(ctx, clientId));
        if (!removed) throw new PortcullisError('ERR_BAD_REQUEST', `no client ${clientId}`);
      }),
    );
}
