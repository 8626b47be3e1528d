/**
 * The floor: a no-op ext_authz server on grpc-js using the project's own generated protos and
 * codecs. It decodes each CheckRequest (every real server must) and answers a prebuilt OK at once.
 * Nothing a Node ext_authz server does can be faster than this on the same machine.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import type { ServiceDefinition, UntypedServiceImplementation, sendUnaryData } from '@grpc/grpc-js';
import { CheckRequestSchema, CheckResponseSchema, type CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { AUTHORIZATION_CHECK_PATH } from '../../src/extauthz/service.js';
import { decode, rawRequestMethod } from '../../src/grpc/codec.js';
import { startGrpcServer } from '../../src/grpc/server.js';

const ok = create(CheckResponseSchema, { status: { code: 0 }, httpResponse: { case: 'okResponse', value: {} } });
toBinary(CheckResponseSchema, ok);

const definition: ServiceDefinition = { Check: rawRequestMethod(AUTHORIZATION_CHECK_PATH, CheckResponseSchema) };
const implementation: UntypedServiceImplementation = {
  Check(call: { request: Buffer }, callback: sendUnaryData<CheckResponse>) {
    if (!decode(CheckRequestSchema, call.request)) return callback({ code: 3, details: 'malformed CheckRequest' });
    callback(null, ok);
  },
};

const address = process.argv[2] ?? '127.0.0.1:0';
const server = await startGrpcServer(address, [{ definition, implementation }], { maxReceiveBytes: 4 << 20 });
process.stdout.write(`${JSON.stringify({ msg: 'floor serving', grpc: `127.0.0.1:${server.port}` })}\n`);
process.on('SIGTERM', () => void server.close(1000).then(() => process.exit(0)));
