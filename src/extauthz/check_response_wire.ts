import { denialBody, upstreamHeaders, type AuthzInput, type Decision, type Deny } from '../pipeline/index.js';
import { grpcStatusOfDenial } from './check_response.js';

/**
 * A Decision as the wire bytes of Envoy's CheckResponse, written straight into one buffer: sizes
 * first, then the bytes. Allows and denials alike are the message `toCheckResponse` builds (property
 * tests decode both and compare them), at ~2 µs instead of ~17 µs for creating the message and
 * encoding it by reflection (protobuf-es's BinaryWriter alone takes ~15 µs for the nesting here);
 * a flood of refused tokens is answered as cheaply as the traffic that passes.
 *
 * CheckResponse: status (google.rpc.Status { code = 1, message = 2 }; OK: empty) = 1,
 * denied_response (DeniedHttpResponse: status = 1 (HttpStatus { code = 1 }), headers = 2, body = 3)
 * = 2, ok_response (OkHttpResponse: headers = 2, headers_to_remove = 5) = 3, headers being
 * HeaderValueOption { header = 1 { key = 1, value = 2 }, append_action = 3 }, dynamic_metadata
 * (google.protobuf.Struct: map entries { key = 1, value = 2 } in field 1; Value: number_value = 2,
 * string_value = 3, list_value = 6 { values = 1 }) = 4.
 */
export function encodeCheckResponse(decision: Decision, input: AuthzInput): Uint8Array {
  if (!decision.allow) return encodeDenial(decision);
  const { set, remove } = upstreamHeaders(decision, input.headers.keys());

  // Sizes.
  const headerSizes: number[] = [];
  let ok = 0;
  for (const [key, value] of set) {
    const headerValue = field(bytes(key)) + field(bytes(value));
    const option = field(headerValue) + 2; // + append_action: tag and one-byte varint
    headerSizes.push(headerValue);
    ok += field(option);
  }
  for (const name of remove) ok += field(bytes(name));
  let list = 0;
  for (const id of decision.reasons) list += field(field(bytes(id)));
  const subject = decision.principal?.subject ?? '';
  const revision = decision.policyRevision ?? '';
  const struct =
    stringEntrySize('decision_id', decision.decisionId) +
    stringEntrySize('subject', subject) +
    field(DETERMINING_POLICIES_KEY + field(field(list))) +
    field(POLICIES_CHECKED_ENTRY) +
    stringEntrySize('policy_revision', revision);
  const total = 2 + field(ok) + field(struct);

  // Bytes.
  const w = new Writer(total);
  w.len(0x0a, 0); // status {}
  w.len(0x1a, ok);
  for (let i = 0; i < set.length; i++) {
    const [key, value] = set[i]!;
    const headerValue = headerSizes[i]!;
    w.len(0x12, field(headerValue) + 2);
    w.len(0x0a, headerValue);
    w.str(0x0a, key);
    w.str(0x12, value);
    w.byte(0x18); // append_action
    w.byte(OVERWRITE_IF_EXISTS_OR_ADD);
  }
  for (const name of remove) w.str(0x2a, name);
  w.len(0x22, struct);
  w.stringEntry('decision_id', decision.decisionId);
  w.stringEntry('subject', subject);
  w.len(0x0a, DETERMINING_POLICIES_KEY + field(field(list)));
  w.str(0x0a, 'determining_policies');
  w.len(0x12, field(list));
  w.len(0x32, list);
  for (const id of decision.reasons) {
    w.len(0x0a, field(bytes(id)));
    w.str(0x1a, id);
  }
  w.len(0x0a, POLICIES_CHECKED_ENTRY);
  w.str(0x0a, 'policies_checked');
  w.len(0x12, 9);
  w.double(0x11, decision.policiesChecked);
  w.stringEntry('policy_revision', revision);
  return w.done();
}

/** A denial: gRPC status with the reason, the HTTP status, JSON content type and challenge, the body, and metadata. */
function encodeDenial(d: Deny): Uint8Array {
  const code = grpcStatusOfDenial(d);
  const body = denialBody(d);
  const revision = d.policyRevision ?? '';
  const status = 1 + varintSize(code) + (d.reason ? field(bytes(d.reason)) : 0);
  const headers: Array<[string, string]> = [['content-type', 'application/json']];
  if (d.challenge) headers.push(['www-authenticate', d.challenge]);
  const headerSizes = headers.map(([key, value]) => (key ? field(bytes(key)) : 0) + (value ? field(bytes(value)) : 0));
  let denied = field(1 + varintSize(d.status));
  for (const size of headerSizes) denied += field(field(size) + 2);
  if (body) denied += field(bytes(body));
  const struct = stringEntrySize('decision_id', d.decisionId) + stringEntrySize('reason', d.reason) + stringEntrySize('policy_revision', revision);

  const w = new Writer(field(status) + field(denied) + field(struct));
  w.len(0x0a, status);
  w.byte(0x08);
  w.varint(code);
  if (d.reason) w.str(0x12, d.reason);
  w.len(0x12, denied);
  w.len(0x0a, 1 + varintSize(d.status));
  w.byte(0x08);
  w.varint(d.status);
  for (let i = 0; i < headers.length; i++) {
    const [key, value] = headers[i]!;
    w.len(0x12, field(headerSizes[i]!) + 2);
    w.len(0x0a, headerSizes[i]!);
    if (key) w.str(0x0a, key);
    if (value) w.str(0x12, value);
    w.byte(0x18); // append_action
    w.byte(OVERWRITE_IF_EXISTS_OR_ADD);
  }
  if (body) w.str(0x1a, body);
  w.len(0x22, struct);
  w.stringEntry('decision_id', d.decisionId);
  w.stringEntry('reason', d.reason);
  w.stringEntry('policy_revision', revision);
  return w.done();
}

/** HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD */
const OVERWRITE_IF_EXISTS_OR_ADD = 2;

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');
const varintSize = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);
/** A length-delimited field of a one-byte tag around `size` bytes. */
const field = (size: number): number => 1 + varintSize(size) + size;
/** A Struct map entry holding a string Value, as a field of the Struct. */
const stringEntrySize = (key: string, value: string): number => field(field(bytes(key)) + field(field(bytes(value))));
/** Fixed parts of the metadata, sized once: the key field of `determining_policies`, and the whole
 * `policies_checked` entry (its key and a Value holding an 8-byte double). */
const DETERMINING_POLICIES_KEY = field(bytes('determining_policies'));
const POLICIES_CHECKED_ENTRY = field(bytes('policies_checked')) + field(9);

class Writer {
  private readonly buf: Buffer;
  private pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  varint(n: number): void {
    while (n > 0x7f) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[this.pos++] = n;
  }

  /** Tag and length of a length-delimited field whose content follows. */
  len(tag: number, size: number): void {
    this.buf[this.pos++] = tag;
    this.varint(size);
  }

  str(tag: number, s: string): void {
    this.len(tag, bytes(s));
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  double(tag: number, n: number): void {
    this.buf[this.pos++] = tag;
    this.pos = this.buf.writeDoubleLE(n, this.pos);
  }

  /** A Struct map entry holding a string Value. */
  stringEntry(key: string, value: string): void {
    const v = bytes(value);
    this.len(0x0a, field(bytes(key)) + field(field(v)));
    this.str(0x0a, key);
    this.len(0x12, field(v));
    this.str(0x1a, value);
  }

  done(): Uint8Array {
    if (this.pos !== this.buf.length) throw new Error(`CheckResponse encoding wrote ${this.pos} of ${this.buf.length} bytes`);
    return this.buf;
  }
}
