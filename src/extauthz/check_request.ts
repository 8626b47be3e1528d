import type { AttributeContext_HttpRequest } from '../gen/envoy/service/auth/v3/attribute_context_pb.js';
import type { CheckRequest } from '../gen/envoy/service/auth/v3/external_auth_pb.js';
import type { AuthzInput } from '../pipeline/index.js';

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Envoy's CheckRequest as an AuthzInput. Pure; the protobuf type stops here. */
export function toAuthzInput(request: CheckRequest): AuthzInput {
  const attrs = request.attributes;
  const http = attrs?.request?.http;
  const headers = headerMap(http);
  const socket = attrs?.source?.address?.address;
  return {
    source: 'envoy',
    method: http?.method ?? '',
    path: http?.path ?? '',
    host: http?.host || first(headers, ':authority') || first(headers, 'host') || '',
    scheme: http?.scheme || first(headers, ':scheme') || '',
    headers,
    sourceAddress: socket?.case === 'socketAddress' ? socket.value.address : '',
    peerPrincipal: attrs?.source?.principal ?? '',
    requestId: http?.id || first(headers, 'x-request-id') || '',
    contextExtensions: attrs?.contextExtensions ?? {},
    body: http?.rawBody.length ? http.rawBody : http?.body || undefined,
  };
}

/**
 * Headers from `header_map` (Envoy's `encode_raw_headers`: raw bytes, repeated keys kept apart)
 * when present, else from the `headers` map. Names are lower-cased.
 */
function headerMap(http: AttributeContext_HttpRequest | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (key: string, value: string) => {
    const name = key.toLowerCase();
    const list = out.get(name);
    if (list) list.push(value);
    else out.set(name, [value]);
  };
  const raw = http?.headerMap?.headers;
  if (raw && raw.length > 0) {
    for (const h of raw) add(h.key, h.rawValue.length > 0 ? utf8.decode(h.rawValue) : h.value);
  } else if (http) {
    for (const key of Object.keys(http.headers)) add(key, http.headers[key]!);
  }
  return out;
}

function first(headers: ReadonlyMap<string, readonly string[]>, name: string): string | undefined {
  return headers.get(name)?.[0];
}
