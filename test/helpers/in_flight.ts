import { fromBinary } from '@bufbuild/protobuf';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { CheckResponseSchema, type CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';

/**
 * Requests held half-sent, so a test knows they are in flight on the server when something happens
 * (a signal, a listener closing): headers and the first bytes of the body go out at once, the rest
 * when `finish()` is called.
 */
export interface HeldRequest<T> {
  /** Resolves once the first part has been written to the socket. */
  started: Promise<void>;
  finish(): Promise<T>;
}

/** A unary Envoy Check over raw HTTP/2 (gRPC framing), its message split in two. */
export function heldGrpcCheck(address: string, path: string, message: Uint8Array): HeldRequest<{ grpcStatus: string | undefined; response: CheckResponse | undefined }> {
  const session = h2connect(`http://${address}`);
  session.on('error', () => {});
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  Buffer.from(message).copy(frame, 5);
  const chunks: Buffer[] = [];
  let grpcStatus: string | undefined;
  const done = new Promise<{ grpcStatus: string | undefined; response: CheckResponse | undefined }>((resolve, reject) => {
    stream.on('response', (headers) => headers['grpc-status'] !== undefined && (grpcStatus = String(headers['grpc-status'])));
    stream.on('trailers', (trailers) => (grpcStatus = String(trailers['grpc-status'])));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      session.close();
      const body = Buffer.concat(chunks);
      resolve({ grpcStatus, response: body.length > 5 ? fromBinary(CheckResponseSchema, body.subarray(5)) : undefined });
    });
    stream.on('error', (err) => {
      session.destroy();
      reject(err);
    });
  });
  done.catch(() => {});
  const started = new Promise<void>((resolve) => stream.write(frame.subarray(0, 8), () => resolve()));
  return { started, finish: () => (stream.end(frame.subarray(8)), done) };
}

/** An HTTP/1.1 POST on its own connection, its body split in two. */
export function heldHttpPost(base: string, path: string, headers: Record<string, string>, body: string): HeldRequest<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const url = new URL(path, base);
  const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent: false, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } });
  const done = new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += String(c)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
  });
  // An error before finish() is reported by finish(); keep it from being an unhandled rejection meanwhile.
  done.catch(() => {});
  const started = new Promise<void>((resolve) => req.write(body.slice(0, 10), () => resolve()));
  return { started, finish: () => (req.end(body.slice(10)), done) };
}
