import { ScalarType, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { HeaderMapSchema } from '../gen/envoy/config/core/v3/base_pb.js';
import { AddressSchema, SocketAddressSchema } from '../gen/envoy/config/core/v3/address_pb.js';
import {
  AttributeContext_HttpRequestSchema,
  AttributeContext_PeerSchema,
  AttributeContext_RequestSchema,
  AttributeContextSchema,
} from '../gen/envoy/service/auth/v3/attribute_context_pb.js';
import { CheckRequestSchema } from '../gen/envoy/service/auth/v3/external_auth_pb.js';
import type { AuthzInput } from '../pipeline/index.js';
import { envoyInput, type CheckRequestFields } from './check_request.js';

/**
 * Envoy's CheckRequest read from its wire bytes straight into an AuthzInput, without building the
 * protobuf message tree (AttributeContext, two Peers, Address, Request, HttpRequest and their
 * defaults) only to read a dozen strings out of it. It reads exactly the fields `toAuthzInput`
 * reads from a decoded message, with protobuf's merge rules (a repeated singular field: last value
 * wins, a repeated message: merged, maps: last entry per key wins, a oneof switching case: reset)
 * and the same strict UTF-8 of proto3 strings, then builds the input the same way (`envoyInput`).
 * Fields it does not read (destination, metadata, TLS session, request time, query, size…) are
 * skipped by their length without being parsed, as a protobuf parser skips unknown fields. A field
 * the schema knows arriving with another wire type than its own, read or skipped, throws (protobuf-es
 * would read such a field by its declared type regardless and see other fields than a skip does), as
 * do a truncated message, a bad tag and bad UTF-8.
 * check_request_wire.test.ts checks it against protobuf-es + toAuthzInput.
 */
export function readCheckRequest(bytes: Uint8Array): AuthzInput {
  const r = new BinaryReader(bytes);
  const acc = new Accumulator();
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no === 1) message(r, wt, acc, attributesField);
    else skip(r, no, wt, checkRequestWireTypes);
  }
  if (r.pos !== r.len) throw new RangeError('premature EOF');
  acc.sourceAddress = acc.addressCase === 1 ? acc.socketAddress : '';
  return envoyInput(acc);
}

/** The fields being read; protobuf's merge rules apply as they arrive. */
class Accumulator implements CheckRequestFields {
  id = '';
  method = '';
  path = '';
  host = '';
  scheme = '';
  headerList: Array<[string, string]> = [];
  /** A plain record, so keys iterate in the order a decoded message's map does. */
  headerRecord: Record<string, string> = {};
  sourceAddress = '';
  peerPrincipal = '';
  contextExtensions: Record<string, string> = {};
  body = '';
  rawBody: Uint8Array | undefined = undefined;
  /** Source address oneof: 0 unset, 1 socket_address, 2 pipe, 3 envoy_internal_address. */
  addressCase = 0;
  socketAddress = '';
  /** The map entry or HeaderValue being read: key (1), value (2), raw_value (3, HeaderValue only). */
  entryKey = '';
  entryValue = '';
  entryRaw: Uint8Array | undefined = undefined;
}

/** Reads one field of a message (its tag already read), or skips it. */
type FieldReader = (r: BinaryReader, acc: Accumulator, no: number, wt: WireType) => void;

/** A length-delimited message field: every field inside its bytes through `read`, which must end exactly there. */
function message(r: BinaryReader, wt: WireType, acc: Accumulator, read: FieldReader): void {
  expectWireType(wt, WireType.LengthDelimited);
  const len = r.uint32();
  const end = r.pos + len;
  if (end > r.len) throw new RangeError('premature EOF');
  while (r.pos < end) {
    const [no, w] = r.tag();
    read(r, acc, no, w);
  }
  if (r.pos !== end) throw new RangeError('message overruns its length');
}

/** One map<string, string> entry or HeaderValue into acc.entry* (missing parts are ""). */
function entry(r: BinaryReader, wt: WireType, acc: Accumulator): void {
  acc.entryKey = '';
  acc.entryValue = '';
  acc.entryRaw = undefined;
  message(r, wt, acc, entryField);
}

function str(r: BinaryReader, wt: WireType): string {
  expectWireType(wt, WireType.LengthDelimited);
  return r.string(true);
}

function expectWireType(actual: WireType, expected: WireType): void {
  if (actual !== expected) throw new Error(`wire type ${actual} where ${expected} was expected`);
}

/** Field number → the wire type a message's field is encoded with; undefined for unknown numbers and packable lists. */
type WireTypes = ReadonlyArray<WireType | undefined>;

/** A field not read: skipped by its wire type, which must be its own when the schema knows the field. */
function skip(r: BinaryReader, no: number, wt: WireType, known: WireTypes): void {
  const expected = known[no];
  if (expected !== undefined) expectWireType(wt, expected);
  r.skip(wt, no);
}

function wireTypesOf(schema: DescMessage): WireTypes {
  const out: Array<WireType | undefined> = [];
  for (const f of schema.fields) out[f.number] = fieldWireType(f);
  return out;
}

/** The wire type a field is encoded with; undefined where two are allowed (a numeric list, packed or not). */
export function fieldWireType(f: DescField): WireType | undefined {
  switch (f.fieldKind) {
    case 'map':
      return WireType.LengthDelimited;
    case 'message':
      return f.delimitedEncoding ? WireType.StartGroup : WireType.LengthDelimited;
    case 'enum':
      return WireType.Varint;
    case 'scalar':
      return scalarWireType(f.scalar);
    case 'list':
      if (f.listKind === 'message') return f.delimitedEncoding ? WireType.StartGroup : WireType.LengthDelimited;
      // Strings and bytes are never packed; numeric lists may come packed (length-delimited) or one element per record.
      return f.listKind === 'scalar' && (f.scalar === ScalarType.STRING || f.scalar === ScalarType.BYTES) ? WireType.LengthDelimited : undefined;
  }
}

function scalarWireType(t: ScalarType): WireType {
  switch (t) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return WireType.LengthDelimited;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WireType.Bit64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return WireType.Bit32;
    default:
      return WireType.Varint;
  }
}

const checkRequestWireTypes = wireTypesOf(CheckRequestSchema);
const attributesWireTypes = wireTypesOf(AttributeContextSchema);
const peerWireTypes = wireTypesOf(AttributeContext_PeerSchema);
const addressWireTypes = wireTypesOf(AddressSchema);
const socketAddressWireTypes = wireTypesOf(SocketAddressSchema);
const requestWireTypes = wireTypesOf(AttributeContext_RequestSchema);
const httpWireTypes = wireTypesOf(AttributeContext_HttpRequestSchema);
const headerMapWireTypes = wireTypesOf(HeaderMapSchema);

/** A map entry's value set as an own property (a `__proto__` key included, as protobuf-es does). */
function setEntry(into: Record<string, string>, acc: Accumulator): void {
  if (acc.entryKey === '__proto__') Object.defineProperty(into, '__proto__', { value: acc.entryValue, writable: true, enumerable: true, configurable: true });
  else into[acc.entryKey] = acc.entryValue;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** AttributeContext: source (1), request (4), context_extensions (10). */
const attributesField: FieldReader = (r, acc, no, wt) => {
  if (no === 1) message(r, wt, acc, peerField);
  else if (no === 4) message(r, wt, acc, requestField);
  else if (no === 10) {
    entry(r, wt, acc);
    setEntry(acc.contextExtensions, acc);
  } else skip(r, no, wt, attributesWireTypes);
};

/** Peer (the source): address (1), principal (4). */
const peerField: FieldReader = (r, acc, no, wt) => {
  if (no === 1) message(r, wt, acc, addressField);
  else if (no === 4) acc.peerPrincipal = str(r, wt);
  else skip(r, no, wt, peerWireTypes);
};

/** Address: the oneof socket_address (1) | pipe (2) | envoy_internal_address (3). */
const addressField: FieldReader = (r, acc, no, wt) => {
  if (no === 1) {
    if (acc.addressCase !== 1) acc.socketAddress = '';
    acc.addressCase = 1;
    message(r, wt, acc, socketAddressField);
  } else if (no === 2 || no === 3) {
    expectWireType(wt, WireType.LengthDelimited);
    acc.addressCase = no;
    r.skip(wt, no);
  } else skip(r, no, wt, addressWireTypes);
};

/** SocketAddress: address (2). */
const socketAddressField: FieldReader = (r, acc, no, wt) => {
  if (no === 2) acc.socketAddress = str(r, wt);
  else skip(r, no, wt, socketAddressWireTypes);
};

/** Request: http (2). */
const requestField: FieldReader = (r, acc, no, wt) => {
  if (no === 2) message(r, wt, acc, httpField);
  else skip(r, no, wt, requestWireTypes);
};

/** HttpRequest: id (1), method (2), headers (3), path (4), host (5), scheme (6), body (11), raw_body (12), header_map (13). */
const httpField: FieldReader = (r, acc, no, wt) => {
  switch (no) {
    case 1:
      acc.id = str(r, wt);
      break;
    case 2:
      acc.method = str(r, wt);
      break;
    case 3:
      entry(r, wt, acc);
      setEntry(acc.headerRecord, acc);
      break;
    case 4:
      acc.path = str(r, wt);
      break;
    case 5:
      acc.host = str(r, wt);
      break;
    case 6:
      acc.scheme = str(r, wt);
      break;
    case 11:
      acc.body = str(r, wt);
      break;
    case 12:
      expectWireType(wt, WireType.LengthDelimited);
      acc.rawBody = r.bytes();
      break;
    case 13:
      message(r, wt, acc, headerMapField);
      break;
    default:
      skip(r, no, wt, httpWireTypes);
  }
};

/** HeaderMap: headers (1), each a HeaderValue; a raw value, when present, wins over the text one. */
const headerMapField: FieldReader = (r, acc, no, wt) => {
  if (no !== 1) return skip(r, no, wt, headerMapWireTypes);
  entry(r, wt, acc);
  acc.headerList.push([acc.entryKey, acc.entryRaw?.length ? utf8.decode(acc.entryRaw) : acc.entryValue]);
};

/** A map entry or HeaderValue: key (1), value (2), raw_value (3). */
const entryField: FieldReader = (r, acc, no, wt) => {
  if (no === 1) acc.entryKey = str(r, wt);
  else if (no === 2) acc.entryValue = str(r, wt);
  else if (no === 3) {
    expectWireType(wt, WireType.LengthDelimited);
    acc.entryRaw = r.bytes();
  } else r.skip(wt, no);
};
