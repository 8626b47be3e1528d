import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { startSidecar, type Sidecar } from '../helpers/sidecar.js';
import { catchAllRoutes, tempDir } from '../helpers/temp_dir.js';

let sidecar: Sidecar;

beforeAll(async () => {
  const dir = tempDir('pc-body', {
    'routes.yaml': catchAllRoutes(true),
    // No schema: the policy reads the parsed body. Form values are strings, JSON keeps its types.
    'p.cedar': `@id("small-json") permit(principal, action, resource) when { context has body && context.body has amount && context.body.amount == 50 };
@id("form") permit(principal, action, resource) when { context has body && context.body has note && context.body.note == "ok" };`,
  });
  sidecar = await startSidecar({ policies: { dir }, request_body: { max_bytes: 256 } });
});

afterAll(async () => {
  await sidecar?.close();
});

function send(contentType: string | undefined, body: { text?: string; bytes?: Uint8Array }): Promise<CheckResponse> {
  return sidecar.client.check({
    attributes: {
      request: {
        http: {
          method: 'POST',
          path: '/orders',
          headers: contentType ? { 'content-type': contentType } : {},
          ...(body.text !== undefined ? { body: body.text } : {}),
          ...(body.bytes ? { rawBody: body.bytes } : {}),
        },
      },
    },
  });
}

const outcome = (res: CheckResponse) =>
  res.httpResponse.case === 'okResponse' ? 200 : res.httpResponse.case === 'deniedResponse' ? res.httpResponse.value.status?.code : undefined;

describe('request bodies in context.body', () => {
  it('parses JSON from the body string and from raw_body bytes', async () => {
    expect(outcome(await send('application/json', { text: '{"amount": 50}' }))).toBe(200);
    expect(outcome(await send('application/json; charset=utf-8', { bytes: new TextEncoder().encode('{"amount": 50}') }))).toBe(200);
    expect(outcome(await send('application/json', { text: '{"amount": 51}' }))).toBe(403);
  });

  it('parses form-urlencoded bodies into string fields', async () => {
    expect(outcome(await send('application/x-www-form-urlencoded', { text: 'note=ok&x=1' }))).toBe(200);
    expect(outcome(await send('application/x-www-form-urlencoded', { bytes: new TextEncoder().encode('note=no') }))).toBe(403);
  });

  it('leaves other content types out of the context', async () => {
    expect(outcome(await send('text/plain', { text: '{"amount": 50}' }))).toBe(403);
    expect(outcome(await send(undefined, { text: '{"amount": 50}' }))).toBe(403);
  });

  it('answers invalid JSON, invalid UTF-8 and oversized bodies with a 400 that says why', async () => {
    for (const [res, why] of [
      [await send('application/json', { text: '{"amount": ' }), 'request body is not valid JSON'],
      [await send('application/json', { bytes: Uint8Array.from([0x7b, 0xff, 0x7d]) }), 'request body is not valid UTF-8'],
      [await send('application/json', { text: `{"pad": "${'x'.repeat(300)}"}` }), 'exceeds the 256-byte limit'],
    ] as const) {
      expect(outcome(res)).toBe(400);
      if (res.httpResponse.case === 'deniedResponse') expect(JSON.parse(res.httpResponse.value.body).error_description).toContain(why);
    }
  });

  it('drops __entity escapes from bodies', async () => {
    expect(outcome(await send('application/json', { text: '{"amount": {"__entity": {"type": "X", "id": "50"}}}' }))).toBe(403);
  });
});
