import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import { Client, credentials, type ServiceError } from '@grpc/grpc-js';
import {
  BatchCheckRequestSchema,
  BatchCheckResponseSchema,
  CheckRequestSchema,
  CheckResponseSchema,
  PlanRequestSchema,
  PlanResponseSchema,
  type BatchCheckResponse,
  type CheckResponse,
  type PlanResponse,
} from '../gen/portcullis/authz/v1/authorizer_pb.js';

/** A small portcullis.authz.v1 client (tests, examples). */
export function createAppClient(address: string) {
  const client = new Client(address, credentials.createInsecure());
  function call<O extends DescMessage>(method: string, output: O, bytes: Uint8Array): Promise<MessageShape<O>> {
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        `/portcullis.authz.v1.Authorizer/${method}`,
        (b: Uint8Array) => Buffer.from(b),
        (b: Buffer) => fromBinary(output, b),
        bytes,
        { deadline: Date.now() + 5000 },
        (err: ServiceError | null, res?: MessageShape<O>) => (err ? reject(err) : resolve(res!)),
      );
    });
  }
  return {
    check: (r: MessageInitShape<typeof CheckRequestSchema>): Promise<CheckResponse> => call('Check', CheckResponseSchema, toBinary(CheckRequestSchema, create(CheckRequestSchema, r))),
    batchCheck: (r: MessageInitShape<typeof BatchCheckRequestSchema>): Promise<BatchCheckResponse> =>
      call('BatchCheck', BatchCheckResponseSchema, toBinary(BatchCheckRequestSchema, create(BatchCheckRequestSchema, r))),
    plan: (r: MessageInitShape<typeof PlanRequestSchema>): Promise<PlanResponse> => call('Plan', PlanResponseSchema, toBinary(PlanRequestSchema, create(PlanRequestSchema, r))),
    checkRaw: (bytes: Uint8Array): Promise<CheckResponse> => call('Check', CheckResponseSchema, bytes),
    close: () => client.close(),
  };
}
