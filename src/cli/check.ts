import { create } from '@bufbuild/protobuf';
import type { Command } from 'commander';
import { loadConfig } from '../config/index.js';
import { toAuthzInput } from '../extauthz/check_request.js';
import { createCheckClient, httpCheckRequest } from '../extauthz/client.js';
import { CheckRequestSchema } from '../gen/envoy/service/auth/v3/external_auth_pb.js';
import { explainDecision } from '../pipeline/explain.js';
import { createCore } from '../core.js';
import { createLogger } from '../telemetry/logger.js';
import { exitWith } from './fail.js';

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('send one Envoy ext_authz Check to a running sidecar and print the answer, or with --explain decide it here and show every step (exit 0 allowed, 1 denied)')
    .argument('<method>', 'HTTP method, e.g. GET')
    .argument('<path>', 'request path with optional query, e.g. /documents/d1')
    .option('-a, --address <host:port>', 'sidecar gRPC address', '127.0.0.1:9191')
    .option('-t, --token <jwt>', 'bearer token (sent as Authorization: Bearer)')
    .option('-H, --header <header...>', 'extra request header "name: value"')
    .option('--host <host>', 'request host', 'api.example.com')
    .option('--explain', 'decide offline with the configuration (--config) and show route, slice, entities, context and determining policies')
    .option('-c, --config <file>', 'YAML config file; implies --explain')
    .action(async (method: string, path: string, opts: { address: string; token?: string; header?: string[]; host: string; explain?: boolean; config?: string }) => {
      const headers: Record<string, string> = {};
      for (const h of opts.header ?? []) {
        const i = h.indexOf(':');
        if (i <= 0) exitWith(new Error(`bad header "${h}" (expected "name: value")`));
        headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
      }
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      const request = httpCheckRequest(method.toUpperCase(), path, headers, { host: opts.host });
      // A configuration means deciding here (offline), as --explain does.
      if (opts.explain || opts.config) return explain(request, opts.config);
      const client = createCheckClient(opts.address);
      try {
        const res = await client.check(request);
        const http = res.httpResponse;
        const summary =
          http.case === 'okResponse'
            ? { allowed: true, grpc_status: res.status?.code ?? 0, upstream_headers: Object.fromEntries(http.value.headers.map((h) => [h.header?.key, h.header?.value])), headers_to_remove: http.value.headersToRemove, metadata: res.dynamicMetadata }
            : { allowed: false, grpc_status: res.status?.code, http_status: http.case === 'deniedResponse' ? http.value.status?.code : undefined, headers: http.case === 'deniedResponse' ? Object.fromEntries(http.value.headers.map((h) => [h.header?.key, h.header?.value])) : undefined, body: http.case === 'deniedResponse' ? tryJson(http.value.body) : undefined };
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        client.close();
        process.exit(http.case === 'okResponse' ? 0 : 1);
      } catch (err) {
        client.close();
        exitWith(err);
      }
    });
}

async function explain(request: ReturnType<typeof httpCheckRequest>, configFile: string | undefined): Promise<never> {
  try {
    const config = loadConfig({ file: configFile });
    const core = await createCore(config, { logger: createLogger('silent') });
    await Promise.all(core.issuers.map((i) => i.keys.start()));
    const active = core.policies.current()!;
    const result = await explainDecision(toAuthzInput(create(CheckRequestSchema, request)), core.decide, core.verifier, active, core.clock.now());
    for (const i of core.issuers) i.keys.stop();
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    process.exit(result.decision.allow ? 0 : 1);
  } catch (err) {
    exitWith(err);
  }
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
