import { fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import type { MethodDefinition } from '@grpc/grpc-js';

/**
 * A unary/streaming method definition for grpc-js using protobuf-es codecs. Requests arrive as
 * raw bytes and are decoded in the handler, so a malformed message becomes INVALID_ARGUMENT
 * with a clear message instead of grpc-js's generic deserialization failure.
 */
export function rawRequestMethod<O extends DescMessage>(path: string, output: O, responseStream = false): MethodDefinition<Buffer, MessageShape<O>> {
  return {
    path,
    requestStream: false,
    responseStream,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (m: MessageShape<O>) => Buffer.from(toBinary(output, m)),
    responseDeserialize: (b: Buffer) => fromBinary(output, b),
  };
}

/** A unary method whose handler takes and answers wire bytes (it encodes its own response). */
export function rawBytesMethod(path: string): MethodDefinition<Buffer, Uint8Array> {
  return {
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    responseDeserialize: (b: Buffer) => b,
  };
}

/** Decodes a request; undefined when the bytes are not a valid message of that type. */
export function decode<I extends DescMessage>(schema: I, bytes: Buffer): MessageShape<I> | undefined {
  try {
    return fromBinary(schema, bytes);
  } catch {
    return undefined;
  }
}
