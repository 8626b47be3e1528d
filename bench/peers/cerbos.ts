/**
 * Peer target: the Cerbos PDP (optional dependency @cerbos/cerbos-linux-x64), answering
 * `cerbos.svc.v1.CerbosService/CheckResources` over gRPC with policies equivalent to the example
 * Portcullis ones (bench/peers/cerbos/policies). Requests and responses are encoded by hand with
 * @bufbuild/protobuf/wire; field numbers come from the upstream protos in github.com/cerbos/cerbos:
 *   api/public/cerbos/request/v1/request.proto   (CheckResourcesRequest, its ResourceEntry)
 *   api/public/cerbos/engine/v1/engine.proto     (Principal, Resource)
 *   api/public/cerbos/response/v1/response.proto (CheckResourcesResponse, its ResultEntry)
 *   api/public/cerbos/effect/v1/effect.proto     (Effect)
 *   google/protobuf/struct.proto                 (Value)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client, credentials, type ServiceError } from '@grpc/grpc-js';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { cpuSeconds, peakRssMb } from '../lib/process_stats.js';
import type { Target } from '../lib/target.js';

export const CERBOS_CHECK_PATH = '/cerbos.svc.v1.CerbosService/CheckResources';

/** Cerbos policies equivalent to the example Portcullis policies (checked by `cerbos compile`, which also runs tests/). */
export const CERBOS_POLICIES_DIR = new URL('./cerbos/policies', import.meta.url).pathname;

/** effect.proto: enum Effect. */
export const EFFECT = { UNSPECIFIED: 0, ALLOW: 1, DENY: 2, NO_MATCH: 3 } as const;
const EFFECT_NAMES = ['EFFECT_UNSPECIFIED', 'EFFECT_ALLOW', 'EFFECT_DENY', 'EFFECT_NO_MATCH'];

/** Path of the Cerbos binary from the optional dependency, or undefined when it is not installed (other platforms). */
export function cerbosBinary(): string | undefined {
  try {
    const pkg = createRequire(import.meta.url).resolve('@cerbos/cerbos-linux-x64/package.json');
    const bin = join(dirname(pkg), 'cerbos-linux-x64');
    return existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

export interface CerbosOptions {
  /** Policy directory (disk store); default the example-equivalent policies. */
  policiesDir?: string;
  /** GOMAXPROCS for the PDP; default unset (Go uses every CPU the process may run on). */
  maxProcs?: number;
}

/** Starts `cerbos server` on two free loopback ports and waits until gRPC accepts and /_cerbos/health answers 200. */
export async function startCerbos(options: CerbosOptions = {}): Promise<Target> {
  const bin = cerbosBinary();
  if (!bin) throw new Error('Cerbos is not installed: the optional dependency @cerbos/cerbos-linux-x64 is missing (Linux x64 only)');
  const [grpcPort, httpPort] = (await freePorts(2)) as [number, number];
  const dir = mkdtempSync(join(tmpdir(), 'pc-bench-cerbos-'));
  const config = join(dir, 'cerbos.yaml');
  writeFileSync(
    config,
    [
      'server:',
      `  grpcListenAddr: "127.0.0.1:${grpcPort}"`,
      `  httpListenAddr: "127.0.0.1:${httpPort}"`,
      'storage:',
      '  driver: disk',
      '  disk:',
      `    directory: ${JSON.stringify(options.policiesDir ?? CERBOS_POLICIES_DIR)}`,
      '    watchForChanges: false',
      'audit:',
      '  enabled: false',
      'telemetry:',
      '  disabled: true',
      '',
    ].join('\n'),
  );
  const env: NodeJS.ProcessEnv = { ...process.env, CERBOS_NO_TELEMETRY: '1' };
  if (options.maxProcs) env.GOMAXPROCS = String(options.maxProcs);
  const child: ChildProcess = spawn(bin, ['server', `--config=${config}`, '--log-level=error'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env });
  let output = '';
  const keep = (b: Buffer) => (output += String(b)).length > 20_000 && (output = output.slice(-10_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const stop = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        rmSync(dir, { recursive: true, force: true });
        resolve();
      };
      if (child.exitCode !== null || child.signalCode !== null) return done();
      const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => {
        clearTimeout(kill);
        done();
      });
      child.kill('SIGTERM');
    });

  let exited: Error | undefined;
  child.once('exit', (code, signal) => (exited = new Error(`cerbos exited with ${code ?? signal}: ${output}`)));
  const deadline = Date.now() + 30_000;
  try {
    for (;;) {
      if (exited) throw exited;
      if ((await tcpAccepts(grpcPort)) && (await healthy(httpPort))) break;
      if (Date.now() > deadline) throw new Error(`cerbos did not become healthy in 30 s: ${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const pid = child.pid!;
  return {
    name: 'cerbos',
    address: `127.0.0.1:${grpcPort}`,
    pid,
    dir,
    cpuSeconds: () => cpuSeconds(pid),
    peakRssMb: () => peakRssMb(pid),
    stop,
  };
}

export interface CerbosCheck {
  principalId: string;
  roles: string[];
  mfa: boolean;
  action: string;
  resourceId: string;
  owner: string;
}

/** The bench request, the same decision the Portcullis `check` scenario asks for: viewer alice reads her document d1 -> allow. */
export const BENCH_CHECK: CerbosCheck = { principalId: 'alice', roles: ['viewer'], mfa: false, action: 'read', resourceId: 'd1', owner: 'alice' };

/** A serialized cerbos.request.v1.CheckResourcesRequest; default the bench request (BENCH_CHECK). */
export function cerbosCheckResourcesBytes(check: Partial<CerbosCheck> = {}): Uint8Array {
  const c = { ...BENCH_CHECK, ...check };
  const w = new BinaryWriter();
  // request.proto CheckResourcesRequest: string request_id = 1
  w.tag(1, WireType.LengthDelimited).string('bench');
  // request.proto CheckResourcesRequest: cerbos.engine.v1.Principal principal = 3
  w.tag(3, WireType.LengthDelimited).fork();
  {
    // engine.proto Principal: string id = 1; repeated string roles = 3; map<string, google.protobuf.Value> attr = 4
    w.tag(1, WireType.LengthDelimited).string(c.principalId);
    for (const role of c.roles) w.tag(3, WireType.LengthDelimited).string(role);
    attrEntry(w, 4, 'mfa', c.mfa);
  }
  w.join();
  // request.proto CheckResourcesRequest: repeated ResourceEntry resources = 4
  w.tag(4, WireType.LengthDelimited).fork();
  {
    // request.proto CheckResourcesRequest.ResourceEntry: repeated string actions = 1; cerbos.engine.v1.Resource resource = 2
    w.tag(1, WireType.LengthDelimited).string(c.action);
    w.tag(2, WireType.LengthDelimited).fork();
    {
      // engine.proto Resource: string kind = 1; string id = 3; map<string, google.protobuf.Value> attr = 4
      // (policy_version = 2 left empty: the server's default version, "default")
      w.tag(1, WireType.LengthDelimited).string('document');
      w.tag(3, WireType.LengthDelimited).string(c.resourceId);
      attrEntry(w, 4, 'owner', c.owner);
    }
    w.join();
  }
  w.join();
  return w.finish();
}

/** One map<string, google.protobuf.Value> entry: a message with key = 1, value = 2. */
function attrEntry(w: BinaryWriter, field: number, key: string, value: string | boolean): void {
  w.tag(field, WireType.LengthDelimited).fork();
  w.tag(1, WireType.LengthDelimited).string(key);
  w.tag(2, WireType.LengthDelimited).fork();
  // struct.proto Value (oneof kind): string string_value = 3; bool bool_value = 4 (written even when false: oneof presence)
  if (typeof value === 'string') w.tag(3, WireType.LengthDelimited).string(value);
  else w.tag(4, WireType.Varint).bool(value);
  w.join();
  w.join();
}

/**
 * Effects per action of the first result of a serialized cerbos.response.v1.CheckResourcesResponse:
 * response.proto CheckResourcesResponse { repeated ResultEntry results = 2 } and
 * ResultEntry { map<string, cerbos.effect.v1.Effect> actions = 2 } (map entry: key = 1, value = 2).
 */
export function decodeCheckResourcesEffects(bytes: Uint8Array): Record<string, number> {
  const effects: Record<string, number> = {};
  const r = new BinaryReader(bytes);
  let seenResult = false;
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    if (field !== 2 || type !== WireType.LengthDelimited || seenResult) {
      r.skip(type, field);
      continue;
    }
    seenResult = true;
    const entry = new BinaryReader(r.bytes());
    while (entry.pos < entry.len) {
      const [f, t] = entry.tag();
      if (f !== 2 || t !== WireType.LengthDelimited) {
        entry.skip(t, f);
        continue;
      }
      const pair = new BinaryReader(entry.bytes());
      let key = '';
      let effect = 0; // proto3: an absent enum value is 0
      while (pair.pos < pair.len) {
        const [pf, pt] = pair.tag();
        if (pf === 1 && pt === WireType.LengthDelimited) key = pair.string();
        else if (pf === 2 && pt === WireType.Varint) effect = pair.int32();
        else pair.skip(pt, pf);
      }
      effects[key] = effect;
    }
  }
  return effects;
}

/** Sends one CheckResources request through grpc-js and returns the effects per action of its result. */
export function cerbosCheck(address: string, request: Uint8Array, timeoutMs = 10_000): Promise<Record<string, number>> {
  const client = new Client(address, credentials.createInsecure());
  return new Promise<Record<string, number>>((resolve, reject) => {
    client.makeUnaryRequest(
      CERBOS_CHECK_PATH,
      (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength),
      (b: Buffer) => b,
      request,
      { deadline: Date.now() + timeoutMs },
      (err: ServiceError | null, res?: Buffer) => {
        if (err) return reject(new Error(`Cerbos CheckResources at ${address} failed: ${err.code} ${err.details}`));
        try {
          resolve(decodeCheckResourcesEffects(res!));
        } catch (e) {
          reject(new Error(`cannot decode Cerbos CheckResourcesResponse: ${(e as Error).message}`));
        }
      },
    );
  }).finally(() => client.close());
}

export function effectName(effect: number | undefined): string {
  return effect === undefined ? 'missing' : (EFFECT_NAMES[effect] ?? `unknown effect ${effect}`);
}

/** Checks that the bench request (cerbosCheckResourcesBytes()) is allowed: action "read" -> EFFECT_ALLOW. */
export async function verifyCerbosAllows(address: string): Promise<void> {
  const effects = await cerbosCheck(address, cerbosCheckResourcesBytes());
  if (effects[BENCH_CHECK.action] !== EFFECT.ALLOW) {
    throw new Error(`Cerbos at ${address} did not allow the bench request: "${BENCH_CHECK.action}" -> ${effectName(effects[BENCH_CHECK.action])} (${JSON.stringify(effects)})`);
  }
}

/** Reserves `count` distinct free loopback ports (bound together, then released). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

async function healthy(httpPort: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${httpPort}/_cerbos/health`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}
