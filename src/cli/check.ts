import type { Command } from 'commander';
import { createCheckClient, httpCheckRequest } from '../extauthz/client.js';
import { exitWith } from './fail.js';

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('send one Envoy ext_authz Check to a running sidecar and print the answer (exit 0 allowed, 1 denied)')
    .argument('<method>', 'HTTP method, e.g. GET')
    .argument('<path>', 'request path with optional query, e.g. /documents/d1')
    .option('-a, --address <host:port>', 'sidecar gRPC address', '127.0.0.1:9191')
    .option('-t, --token <jwt>', 'bearer token (sent as Authorization: Bearer)')
    .option('-H, --header <header...>', 'extra request header "name: value"')
    .option('--host <host>', 'request host', 'api.example.com')
    .action(async (method: string, path: string, opts: { address: string; token?: string; header?: string[]; host: string }) => {
      const headers: Record<string, string> = {};
      for (const h of opts.header ?? []) {
        const i = h.indexOf(':');
        if (i <= 0) exitWith(new Error(`bad header "${h}" (expected "name: value")`));
        headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
      }
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      const client = createCheckClient(opts.address);
      try {
        const res = await client.check(httpCheckRequest(method.toUpperCase(), path, headers, { host: opts.host }));
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

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
