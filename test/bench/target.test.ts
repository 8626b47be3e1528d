import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkBytes } from '../../bench/lib/requests.js';
import { compiledServer, startFloor } from '../../bench/lib/target.js';
import { createCheckClient } from '../../src/extauthz/client.js';

describe('bench targets', () => {
  it('run the floor as plain Node from one built file (no tsx hooks thread): it reads each CheckRequest with the wire reader and answers OK, or INVALID_ARGUMENT', { timeout: 60_000 }, async () => {
    const file = await compiledServer('floor');
    expect(file).toMatch(/bench\/\.build\/floor\.mjs$/);
    const source = readFileSync(file, 'utf8');
    expect(source).toContain('function readCheckRequest(');
    // Only what a bare ext_authz server needs: protobuf and grpc-js, none of Portcullis' engine, tokens or telemetry.
    const packages = [...new Set([...source.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]!.split('/').slice(0, m[1]!.startsWith('@') ? 2 : 1).join('/')))].sort();
    expect(packages).toEqual(['@bufbuild/protobuf', '@grpc/grpc-js']);
    const target = await startFloor();
    const client = createCheckClient(target.address);
    try {
      // Started as `node bench/.build/floor.mjs`, without tsx's loader (its hooks thread and isolate would count in the floor's RSS and CPU).
      const argv = readFileSync(`/proc/${target.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      expect(argv.slice(1)).toEqual([file]);
      const ok = await client.checkRaw(checkBytes('GET', '/documents/d1', 'x.y.z'));
      expect(ok.httpResponse.case).toBe('okResponse');
      expect(ok.status?.code ?? 0).toBe(0);
      // A truncated message: the reader refuses it as Portcullis does.
      await expect(client.checkRaw(Uint8Array.of(0x0a, 0x10, 0x01))).rejects.toMatchObject({ code: 3, details: 'malformed CheckRequest' });
    } finally {
      client.close();
      await target.stop();
    }
  });

  it('report a server that died under them (signal and all) and stop at once instead of waiting for an exit that came already', { timeout: 60_000 }, async () => {
    const target = await startFloor();
    expect(target.exited!()).toBeUndefined();
    process.kill(target.pid, 'SIGKILL');
    await expect.poll(() => target.exited!(), { timeout: 5_000 }).toMatch(/^killed by SIGKILL; stderr: .*; last log lines: .*floor serving/);
    const stopped = await Promise.race([target.stop().then(() => 'stopped'), new Promise((resolve) => setTimeout(() => resolve('hung'), 3_000))]);
    expect(stopped).toBe('stopped');
  });
});
