import type { CheckRequest } from '../gen/envoy/service/auth/v3/external_auth_pb.js';
import type { AuthzInput } from '../pipeline/index.js';

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** What Portcullis reads from a CheckRequest, however it was read (message or wire bytes). */
export interface CheckRequestFields {
  id: string;
  method: string;
  path: string;
  host: string;
  scheme: string;
  /** `header_map` (Envoy's `encode_raw_headers`: repeated keys kept apart), values already text. */
  headerList: ReadonlyArray<readonly [string, string]>;
  /** The `headers` map, used when `header_map` is empty. */
  headerRecord: Readonly<Record<string, string>>;
  sourceAddress: string;
  peerPrincipal: string;
  contextExtensions: Readonly<Record<string, string>>;
  body: string;
  rawBody: Uint8Array | undefined;
}

/** Envoy's CheckRequest as an AuthzInput. Pure; the protobuf type stops here. */
export function toAuthzInput(request: CheckRequest): AuthzInput {
  const attrs = request.attributes;
  const http = attrs?.request?.http;
  const socket = attrs?.source?.address?.address;
  return envoyInput({
    id: http?.id ?? '',
    method: http?.method ?? '',
    path: http?.path ?? '',
    host: http?.host ?? '',
    scheme: http?.scheme ?? '',
    headerList: (http?.headerMap?.headers ?? []).map((h) => [h.key, h.rawValue.length > 0 ? utf8.decode(h.rawValue) : h.value] as const),
    headerRecord: http?.headers ?? {},
    sourceAddress: socket?.case === 'socketAddress' ? socket.value.address : '',
    peerPrincipal: attrs?.source?.principal ?? '',
    contextExtensions: attrs?.contextExtensions ?? {},
    body: http?.body ?? '',
    rawBody: http?.rawBody,
  });
}

/**
 * The AuthzInput from a CheckRequest's fields. Headers come from `header_map` when present, else
 * from the `headers` map; names are lower-cased and repeated headers keep every value. Host,
 * scheme and request id fall back to the headers.
 */
export function envoyInput(f: CheckRequestFields): AuthzInput {
  const headers = new Map<string, string[]>();
  const add = (key: string, value: string) => {
    const name = key.toLowerCase();
    const list = headers.get(name);
    if (list) list.push(value);
    else headers.set(name, [value]);
  };
  if (f.headerList.length > 0) for (const [key, value] of f.headerList) add(key, value);
  else for (const key of Object.keys(f.headerRecord)) add(key, f.headerRecord[key]!);
  const first = (name: string) => headers.get(name)?.[0];
  return {
    source: 'envoy',
    method: f.method,
    path: f.path,
    host: f.host || first(':authority') || first('host') || '',
    scheme: f.scheme || first(':scheme') || '',
    headers,
    sourceAddress: f.sourceAddress,
    peerPrincipal: f.peerPrincipal,
    requestId: f.id || first('x-request-id') || '',
    contextExtensions: f.contextExtensions,
    body: f.rawBody?.length ? f.rawBody : f.body || undefined,
  };
}
