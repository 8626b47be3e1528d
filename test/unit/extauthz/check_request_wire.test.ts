import { create, fromBinary, toBinary, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toAuthzInput } from '../../../src/extauthz/check_request.js';
import { fieldWireType, readCheckRequest } from '../../../src/extauthz/check_request_wire.js';
import { CheckRequestSchema } from '../../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import type { AuthzInput } from '../../../src/pipeline/index.js';

/** The wire reader must give exactly what protobuf-es decoding plus toAuthzInput gives. */

const decoded = (bytes: Uint8Array): AuthzInput => toAuthzInput(fromBinary(CheckRequestSchema, bytes));

/** Comparable form: the header Map as entries (order included), bytes as arrays. */
const plain = (i: AuthzInput) => ({ ...i, headers: [...i.headers.entries()], body: i.body instanceof Uint8Array ? [...i.body] : i.body, contextExtensions: Object.entries(i.contextExtensions) });

const text = fc.oneof(fc.constantFrom('', 'a', 'Host', 'host', ':authority', ':scheme', 'x-request-id', 'authorization', '__proto__', '123', 'é'), fc.string({ maxLength: 12 }), fc.string({ unit: 'grapheme', maxLength: 6 }));
const record = fc.dictionary(text, text, { maxKeys: 4 });

const message = fc.record(
  {
    source: fc.record(
      {
        principal: text,
        address: fc.oneof(
          fc.record({ case: fc.constant('socketAddress' as const), value: fc.record({ address: text, portValue: fc.nat(65535) }) }),
          fc.record({ case: fc.constant('pipe' as const), value: fc.record({ path: text }) }),
          fc.record({ case: fc.constant('envoyInternalAddress' as const), value: fc.record({ endpointId: text }) }),
        ),
        service: text,
      },
      { requiredKeys: [] },
    ),
    destination: fc.record({ principal: text, service: text }, { requiredKeys: [] }),
    http: fc.record(
      {
        id: text,
        method: fc.oneof(fc.constantFrom('GET', 'POST', ''), text),
        headers: record,
        headerMap: fc.array(fc.record({ key: text, value: text, rawValue: fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 6 })) }), { maxLength: 4 }),
        path: text,
        host: text,
        scheme: text,
        query: text,
        size: fc.bigInt({ min: -1n, max: 1n << 40n }),
        body: text,
        rawBody: fc.uint8Array({ maxLength: 8 }),
      },
      { requiredKeys: [] },
    ),
    contextExtensions: record,
    metadataKeys: fc.array(text, { maxLength: 2 }),
  },
  { requiredKeys: [] },
);

type Shape = typeof message extends fc.Arbitrary<infer T> ? T : never;

function encode(m: Shape): Uint8Array {
  const address = m.source?.address ? { address: m.source.address.case === 'socketAddress' ? { case: 'socketAddress' as const, value: { address: m.source.address.value.address, portSpecifier: { case: 'portValue' as const, value: m.source.address.value.portValue } } } : m.source.address.case === 'pipe' ? { case: 'pipe' as const, value: m.source.address.value } : { case: 'envoyInternalAddress' as const, value: m.source.address.value } } : undefined;
  const http = m.http && { ...m.http, headerMap: m.http.headerMap ? { headers: m.http.headerMap } : undefined };
  return toBinary(
    CheckRequestSchema,
    create(CheckRequestSchema, {
      attributes: {
        ...(m.source ? { source: { principal: m.source.principal ?? '', service: m.source.service ?? '', ...(address ? { address } : {}) } } : {}),
        ...(m.destination ? { destination: m.destination } : {}),
        ...(http ? { request: { http } } : {}),
        contextExtensions: m.contextExtensions ?? {},
        ...(m.metadataKeys?.length ? { metadataContext: { filterMetadata: Object.fromEntries(m.metadataKeys.map((k) => [k, { fields: {} }])) } } : {}),
      },
    }),
  );
}

/**
 * Whether bytes are well-formed for a message type, nested messages included: every known field has its
 * declared wire type and every field, known or not, ends within its enclosing message. protobuf-es does not
 * check either inside a message (a skipped field may run past its message's end and it reads on from there),
 * so on bytes that are not well-formed it is no oracle for a reader that skips such a message by its length.
 */
function wellFormed(schema: DescMessage, r: BinaryReader, end: number): boolean {
  while (r.pos < end) {
    const [no, wt] = r.tag();
    const f = schema.fields.find((x) => x.number === no);
    const expected = f && fieldWireType(f);
    if (expected !== undefined && wt !== expected) return false;
    const nested = f?.fieldKind === 'message' || (f?.fieldKind === 'list' && f.listKind === 'message') ? f.message : undefined;
    if (f?.fieldKind === 'map' || nested) {
      const len = r.uint32();
      const inner = r.pos + len;
      if (inner > end) return false;
      if (nested ? !wellFormed(nested, r, inner) : !wellFormedEntry(f as DescField & { fieldKind: 'map' }, r, inner)) return false;
    } else r.skip(wt, no);
    if (r.pos > end) return false;
  }
  return r.pos === end;
}

function wellFormedEntry(f: DescField & { fieldKind: 'map' }, r: BinaryReader, end: number): boolean {
  while (r.pos < end) {
    const [no, wt] = r.tag();
    if (no === 2 && f.mapKind === 'message') {
      if (wt !== WireType.LengthDelimited) return false;
      const len = r.uint32();
      const inner = r.pos + len;
      if (inner > end || !wellFormed(f.message, r, inner)) return false;
    } else r.skip(wt, no);
    if (r.pos > end) return false;
  }
  return r.pos === end;
}

const isWellFormed = (bytes: Uint8Array): boolean => {
  try {
    return wellFormed(CheckRequestSchema, new BinaryReader(bytes), bytes.length);
  } catch {
    return false;
  }
};

const concat = (a: Uint8Array, b: Uint8Array) => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

describe('CheckRequest wire reader', () => {
  it('reads what protobuf-es decoding and toAuthzInput read, for any message', () => {
    fc.assert(
      fc.property(message, (m) => {
        const bytes = encode(m);
        expect(isWellFormed(bytes)).toBe(true);
        expect(plain(readCheckRequest(bytes))).toEqual(plain(decoded(bytes)));
      }),
      { numRuns: 400 },
    );
  });

  it('applies protobuf merge rules like protobuf-es: two messages back to back read as one merged message', () => {
    // Concatenated encodings are a merge: last scalar wins, messages merge, maps and repeated fields
    // accumulate, a oneof that switches case starts afresh.
    fc.assert(
      fc.property(message, message, (a, b) => {
        const bytes = concat(encode(a), encode(b));
        expect(isWellFormed(bytes)).toBe(true);
        expect(plain(readCheckRequest(bytes))).toEqual(plain(decoded(bytes)));
      }),
      { numRuns: 300 },
    );
  });

  // Damage: bytes overwritten (printable ASCII half the time, which keeps text valid UTF-8) and a cut end (a quarter of the runs).
  const byteValue = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0x20, max: 0x7e }));
  const cutBytes = fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.integer({ min: 1, max: 3 }), weight: 1 });

  it('on damaged bytes either refuses with an Error or, when they are still well-formed protobuf, reads what protobuf-es reads', () => {
    let compared = 0;
    fc.assert(
      fc.property(message, fc.array(fc.tuple(fc.nat(), byteValue), { minLength: 1, maxLength: 3 }), cutBytes, (m, flips, cut) => {
        const bytes = encode(m).slice();
        for (const [at, value] of flips) if (bytes.length) bytes[at % bytes.length] = value;
        const damaged = bytes.subarray(0, Math.max(0, bytes.length - cut));
        let ours: AuthzInput | Error;
        try {
          ours = readCheckRequest(damaged);
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
          return;
        }
        let theirs: AuthzInput;
        try {
          theirs = decoded(damaged);
        } catch {
          // Only fields Portcullis never reads are skipped unparsed; protobuf-es parses them and may refuse.
          return;
        }
        if (!isWellFormed(damaged)) return;
        compared++;
        expect(plain(ours)).toEqual(plain(theirs));
      }),
      { numRuns: 2000 },
    );
    // Most damage is refused (~80 %); the property must still have compared a share of the runs (~6 %).
    expect(compared).toBeGreaterThan(50);
  });

  it('skips a message it does not read by its length even where protobuf-es, reading it, runs past its end', () => {
    // destination (2) is a Peer of 3 bytes holding field 6 as a 64-bit value, which needs 8: protobuf-es
    // skips those 8 bytes across the Peer's end, over the context extension that follows, and stops there.
    const extension = Uint8Array.of(0x52, 0x04, 0x0a, 0x02, 0x6b, 0x6b); // context_extensions { kk: "" }
    const bytes = Uint8Array.of(0x0a, 5 + extension.length, 0x12, 0x03, 0x31, 0x32, 0x33, ...extension);
    expect(isWellFormed(bytes)).toBe(false);
    expect(decoded(bytes).contextExtensions).toEqual({});
    expect(readCheckRequest(bytes).contextExtensions).toEqual({ kk: '' });
    // Well-formed (destination { principal: "p" }), both read the same.
    const fine = Uint8Array.of(0x0a, 5 + extension.length, 0x12, 0x03, 0x22, 0x01, 0x70, ...extension);
    expect(isWellFormed(fine)).toBe(true);
    expect(plain(readCheckRequest(fine))).toEqual(plain(decoded(fine)));
    expect(readCheckRequest(fine).contextExtensions).toEqual({ kk: '' });
  });

  it('refuses truncated messages, bad tags, wrong wire types and bad UTF-8 in a field it reads', () => {
    const good = encode({ http: { path: '/documents/d1', method: 'GET', headers: { authorization: 'Bearer x' } } });
    expect(readCheckRequest(good).path).toBe('/documents/d1');
    expect(() => readCheckRequest(good.subarray(0, good.length - 1))).toThrow(/premature EOF|overruns/);
    expect(() => readCheckRequest(Uint8Array.of(0x00))).toThrow(/illegal tag/);
    // attributes (field 1) sent as a varint instead of a message
    expect(() => readCheckRequest(Uint8Array.of(0x08, 0x01))).toThrow(/wire type 0/);
    // attributes { request { http { path: <0xff> } } }
    expect(() => readCheckRequest(Uint8Array.of(0x0a, 0x07, 0x22, 0x05, 0x12, 0x03, 0x22, 0x01, 0xff))).toThrow();
    expect(() => decoded(Uint8Array.of(0x0a, 0x07, 0x22, 0x05, 0x12, 0x03, 0x22, 0x01, 0xff))).toThrow();
  });

  it('refuses a field it skips when it comes with another wire type than the schema gives it', () => {
    // http { protocol (10, a string) sent as varint 14, then 14 bytes that read as id "   " and method "       " }.
    // protobuf-es reads field 10 as a string of 14 bytes whatever its wire type, so it sees no id and no
    // method; skipping the varint would read both. Found by the damaged-bytes property (seed 1196167865).
    const http = Uint8Array.of(0x50, 0x0e, 0x0a, 0x03, 0x20, 0x20, 0x20, 0x12, 0x07, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20);
    const bytes = Uint8Array.of(0x0a, http.length + 4, 0x22, http.length + 2, 0x12, http.length, ...http);
    expect(decoded(bytes)).toMatchObject({ requestId: '', method: '' });
    expect(() => readCheckRequest(bytes)).toThrow('wire type 0 where 2 was expected');
    // The same field with its own wire type is skipped, and what follows it is read.
    const proper = Uint8Array.of(0x52, 0x01, 0x68, 0x0a, 0x03, 0x20, 0x20, 0x20, 0x12, 0x07, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20);
    const ok = Uint8Array.of(0x0a, proper.length + 4, 0x22, proper.length + 2, 0x12, proper.length, ...proper);
    expect(plain(readCheckRequest(ok))).toEqual(plain(decoded(ok)));
    expect(readCheckRequest(ok)).toMatchObject({ requestId: '   ', method: '       ' });
    // A skipped varint field (size, 9) sent length-delimited is refused too; an unknown number is skipped by its own wire type.
    const sizeAsBytes = Uint8Array.of(0x0a, 0x07, 0x22, 0x05, 0x12, 0x03, 0x4a, 0x01, 0x00);
    expect(() => readCheckRequest(sizeAsBytes)).toThrow('wire type 2 where 0 was expected');
    const unknown = Uint8Array.of(0x0a, 0x07, 0x22, 0x05, 0x12, 0x03, 0xf8, 0x06, 0x07); // field 111, varint 7
    expect(plain(readCheckRequest(unknown))).toEqual(plain(decoded(unknown)));
  });

  it('reads an empty message as an empty request', () => {
    expect(plain(readCheckRequest(new Uint8Array(0)))).toEqual(plain(decoded(new Uint8Array(0))));
  });
});
