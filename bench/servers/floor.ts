/**
 * The floor: a no-op ext_authz server on grpc-js with the project's own protos and the serializers
 * Portcullis itself serves with: the raw-bytes method definition, the CheckRequest wire reader (every
 * real server must read the request) and an OK CheckResponse encoded once, answered at once. Nothing
 * a Node ext_authz server does can be faster than this on the same machine, Portcullis included: it
 * runs the same reader and writes a larger answer after deciding.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import type { ServiceDefinition, UntypedServiceImplementation, sendUnaryData } from '@grpc/grpc-js';
import { CheckResponseSchema } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { readCheckRequest } from '../../src/extauthz/check_request_wire.js';
import { AUTHORIZATION_CHECK_PATH } from '../../src/extauthz/paths.js';
import { rawBytesMethod } from '../../src/grpc/codec.js';
import { startGrpcServer } from '../../src/grpc/server.js';

const OK = toBinary(CheckResponseSchema, create(CheckResponseSchema, { status: { code: 0 }, httpResponse: { case: 'okResponse', value: {} } }));

const definition: ServiceDefinition = { Check: rawBytesMethod(AUTHORIZATION_CHECK_PATH) };
const implementation: UntypedServiceImplementation = {
  Check(call: { request: Buffer }, callback: sendUnaryData<Uint8Array>) {
    try {
      readCheckRequest(call.request);
    } catch {
      return callback({ code: 3, details: 'malformed CheckRequest' });
    }
    callback(null, OK);
  },
};

const address = process.argv[2] ?? '127.0.0.1:0';
const server = await startGrpcServer(address, [{ definition, implementation }], { maxReceiveBytes: 4 << 20 });
process.stdout.write(`${JSON.stringify({ msg: 'floor serving', grpc: `127.0.0.1:${server.port}` })}\n`);
process.on('SIGTERM', () => void server.close(1000).then(() => process.exit(0)));
