import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import { Client, Metadata, credentials, type ServiceError } from '@grpc/grpc-js';
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
  /** `headers` become call metadata (e.g. a W3C `traceparent`). */
  function call<O extends DescMessage>(method: string, output: O, bytes: Uint8Array, headers: Record<string, string> = {}): Promise<MessageShape<O>> {
    const metadata = new Metadata();
    for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        `/portcullis.authz.v1.Authorizer/${method}`,
        (b: Uint8Array) => Buffer.from(b),
        (b: Buffer) => fromBinary(output, b),
        bytes,
        metadata,
        { deadline: Date.now() + 5000 },
        (err: ServiceError | null, res?: MessageShape<O>) => (err ? reject(err) : resolve(res!)),
      );
    });
  }
  return {
    check: (r: MessageInitShape<typeof CheckRequestSchema>, headers?: Record<string, string>): Promise<CheckResponse> => call('Check', CheckResponseSchema, toBinary(CheckRequestSchema, create(CheckRequestSchema, r)), headers),
    batchCheck: (r: MessageInitShape<typeof BatchCheckRequestSchema>, headers?: Record<string, string>): Promise<BatchCheckResponse> =>
      call('BatchCheck', BatchCheckResponseSchema, toBinary(BatchCheckRequestSchema, create(BatchCheckRequestSchema, r)), headers),
    plan: (r: MessageInitShape<typeof PlanRequestSchema>): Promise<PlanResponse> => call('Plan', PlanResponseSchema, toBinary(PlanRequestSchema, create(PlanRequestSchema, r))),
    checkRaw: (bytes: Uint8Array): Promise<CheckResponse> => call('Check', CheckResponseSchema, bytes),
    close: () => client.close(),
  };
}
