import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toAuthzInput } from '../../../src/extauthz/check_request.js';
import { readCheckRequest } from '../../../src/extauthz/check_request_wire.js';
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
        expect(plain(readCheckRequest(bytes))).toEqual(plain(decoded(bytes)));
      }),
      { numRuns: 300 },
    );
  });

  it('on damaged bytes either refuses with an Error or, when protobuf-es also accepts them, reads the same', () => {
    fc.assert(
      fc.property(message, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }), fc.nat(), (m, flips, cut) => {
        const bytes = encode(m).slice();
        for (const [at, value] of flips) if (bytes.length) bytes[at % bytes.length] = value;
        const damaged = bytes.subarray(0, bytes.length ? bytes.length - (cut % Math.min(bytes.length, 4)) : 0);
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
        expect(plain(ours)).toEqual(plain(theirs));
      }),
      { numRuns: 600 },
    );
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

  it('reads an empty message as an empty request', () => {
    expect(plain(readCheckRequest(new Uint8Array(0)))).toEqual(plain(decoded(new Uint8Array(0))));
  });
});
