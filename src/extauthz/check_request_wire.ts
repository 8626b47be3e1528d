import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
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
 * skipped by their length without being parsed, as a protobuf parser skips unknown fields. A known
 * field with the wrong wire type, a truncated message, a bad tag or bad UTF-8 throws.
 * check_request_wire.test.ts checks it against protobuf-es + toAuthzInput.
 */
export function readCheckRequest(bytes: Uint8Array): AuthzInput {
  const r = new BinaryReader(bytes);
  const acc = new Accumulator();
  const end = r.len;
  while (r.pos < end) {
    const [no, wt] = r.tag();
    if (no === 1) nested(r, wt, acc, readAttributes);
    else r.skip(wt, no);
  }
  if (r.pos !== end) throw new RangeError('premature EOF');
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
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Reads a length-delimited message field with `read` over its bytes. */
function nested(r: BinaryReader, wt: WireType, acc: Accumulator, read: (r: BinaryReader, end: number, acc: Accumulator) => void): void {
  expectWireType(wt, WireType.LengthDelimited);
  const len = r.uint32();
  const end = r.pos + len;
  if (end > r.len) throw new RangeError('premature EOF');
  read(r, end, acc);
  if (r.pos !== end) throw new RangeError('message overruns its length');
}

function str(r: BinaryReader, wt: WireType): string {
  expectWireType(wt, WireType.LengthDelimited);
  return r.string(true);
}

function expectWireType(actual: WireType, expected: WireType): void {
  if (actual !== expected) throw new Error(`wire type ${actual} where ${expected} was expected`);
}

/** AttributeContext: source (1), request (4), context_extensions (10). */
function readAttributes(r: BinaryReader, end: number, acc: Accumulator): void {
  while (r.pos < end) {
    const [no, wt] = r.tag();
    if (no === 1) nested(r, wt, acc, readPeer);
    else if (no === 4) nested(r, wt, acc, readRequest);
    else if (no === 10) readMapEntry(r, wt, acc.contextExtensions);
    else r.skip(wt, no);
  }
}

/** Peer (the source): address (1), principal (4). */
function readPeer(r: BinaryReader, end: number, acc: Accumulator): void {
  while (r.pos < end) {
    const [no, wt] = r.tag();
    if (no === 1) nested(r, wt, acc, readAddress);
    else if (no === 4) acc.peerPrincipal = str(r, wt);
    else r.skip(wt, no);
  }
}

/** Address: the oneof socket_address (1) | pipe (2) | envoy_internal_address (3). */
function readAddress(r: BinaryReader, end: number, acc: Accumulator): void {
  while (r.pos < end) {
    const [no, wt] = r.tag();
    if (no === 1) {
      if (acc.addressCase !== 1) acc.socketAddress = '';
      acc.addressCase = 1;
      nested(r, wt, acc, readSocketAddress);
    } else if (no === 2 || no === 3) {
      expectWireType(wt, WireType.LengthDelimited);
      acc.addressCase = no;
      r.skip(wt, no);
    } else r.skip(wt, no);
  }
}

/** SocketAddress: address (2). */
function readSocketAddress(r: BinaryReader, end: number, acc: Accumulator): void {
  while (r.pos < end) {
    const [no, wt] = r.tag();
    if (no === 2) acc.socketAddress = str(r, wt);
    else r.skip(wt, no);
  }
}

/** Request: http (2). */
function readRequest(r: BinaryReader, end: number, acc: Accumulator): void {
  while (r.pos < end) {
    const [no, wt] = r.tag();
    if (no === 2) nested(r, wt, acc, readHttp);
    else r.skip(wt, no);
  }
}

/** HttpRequest: id (1), method (2), headers (3), path (4), host (5), scheme (6), body (11), raw_body (12), header_map (13). */
function readHttp(r: BinaryReader, end: number, acc: Accumulator): void {
  while (r.pos < end) {
    const [no, wt] = r.tag();
    switch (no) {
      case 1:
        acc.id = str(r, wt);
        break;
      case 2:
        acc.method = str(r, wt);
        break;
      case 3:
        readMapEntry(r, wt, acc.headerRecord);
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
        nested(r, wt, acc, readHeaderMap);
        break;
      default:
        r.skip(wt, no);
    }
  }
}

/** HeaderMap: headers (1), each a HeaderValue of key (1), value (2), raw_value (3). */
function readHeaderMap(r: BinaryReader, end: number, acc: Accumulator): void {
  while (r.pos < end) {
    const [no, wt] = r.tag();
    if (no !== 1) {
      r.skip(wt, no);
      continue;
    }
    expectWireType(wt, WireType.LengthDelimited);
    const valueLength = r.uint32();
    const valueEnd = r.pos + valueLength;
    if (valueEnd > r.len) throw new RangeError('premature EOF');
    let key = '';
    let value = '';
    let raw: Uint8Array | undefined;
    while (r.pos < valueEnd) {
      const [f, w] = r.tag();
      if (f === 1) key = str(r, w);
      else if (f === 2) value = str(r, w);
      else if (f === 3) {
        expectWireType(w, WireType.LengthDelimited);
        raw = r.bytes();
      } else r.skip(w, f);
    }
    if (r.pos !== valueEnd) throw new RangeError('message overruns its length');
    acc.headerList.push([key, raw?.length ? utf8.decode(raw) : value]);
  }
}

/** One map<string, string> entry (key 1, value 2; missing ones are ""), set as an own property. */
function readMapEntry(r: BinaryReader, wt: WireType, into: Record<string, string>): void {
  expectWireType(wt, WireType.LengthDelimited);
  const entryLength = r.uint32();
  const entryEnd = r.pos + entryLength;
  if (entryEnd > r.len) throw new RangeError('premature EOF');
  let key = '';
  let value = '';
  while (r.pos < entryEnd) {
    const [f, w] = r.tag();
    if (f === 1) key = str(r, w);
    else if (f === 2) value = str(r, w);
    else r.skip(w, f);
  }
  if (r.pos !== entryEnd) throw new RangeError('message overruns its length');
  if (key === '__proto__') Object.defineProperty(into, key, { value, writable: true, enumerable: true, configurable: true });
  else into[key] = value;
}
