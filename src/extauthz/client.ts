import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { Client, credentials, type ServiceError } from '@grpc/grpc-js';
import { CheckRequestSchema, CheckResponseSchema, type CheckResponse } from '../gen/envoy/service/auth/v3/external_auth_pb.js';
import { AUTHORIZATION_CHECK_PATH } from './service.js';

export type CheckRequestInit = MessageInitShape<typeof CheckRequestSchema>;

/** A small ext_authz client (what Envoy does), for the CLI, tests and benchmarks. */
export interface CheckClient {
  check(request: CheckRequestInit, deadlineMs?: number): Promise<CheckResponse>;
  /** Sends arbitrary bytes as the request message (malformed-input tests). */
  checkRaw(bytes: Uint8Array, deadlineMs?: number): Promise<CheckResponse>;
  close(): void;
}

export function createCheckClient(address: string, options: { ownConnection?: boolean } = {}): CheckClient {
  // grpc-js shares one connection among clients of the same address unless told otherwise; a client
  // of its own connection lands on another cluster worker (workers: N hands connections round-robin).
  const client = new Client(address, credentials.createInsecure(), options.ownConnection ? { 'grpc.use_local_subchannel_pool': 1 } : {});
  const call = (bytes: Uint8Array, deadlineMs: number) =>
    new Promise<CheckResponse>((resolve, reject) => {
      client.makeUnaryRequest(
        AUTHORIZATION_CHECK_PATH,
        (b: Uint8Array) => Buffer.from(b),
        (b: Buffer) => fromBinary(CheckResponseSchema, b),
        bytes,
        { deadline: Date.now() + deadlineMs },
        (err: ServiceError | null, res?: CheckResponse) => (err ? reject(err) : resolve(res!)),
      );
    });
  return {
    check: (request, deadlineMs = 5000) => call(toBinary(CheckRequestSchema, create(CheckRequestSchema, request)), deadlineMs),
    checkRaw: (bytes, deadlineMs = 5000) => call(bytes, deadlineMs),
    close: () => client.close(),
  };
}

/** A CheckRequest as Envoy builds it for an HTTP request. */
export function httpCheckRequest(method: string, path: string, headers: Record<string, string> = {}, extra: { host?: string; sourceIp?: string; id?: string } = {}): CheckRequestInit {
  return {
    attributes: {
      source: { address: { address: { case: 'socketAddress', value: { address: extra.sourceIp ?? '127.0.0.1', portSpecifier: { case: 'portValue', value: 50000 } } } } },
      request: {
        http: {
          id: extra.id ?? 'req-1',
          method,
          path,
          host: extra.host ?? 'api.example.com',
          scheme: 'http',
          protocol: 'HTTP/1.1',
          headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
        },
      },
    },
  };
}
