import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig, type Config } from '../../src/config/index.js';
import { EXAMPLE_POLICIES, startSidecar } from '../helpers/sidecar.js';
import { hostOf, knownEnv, loadDocuments, portcullisEnvNames, portOf, ROOT, validateConfig } from './manifests.js';
import { IMAGE_RUNTIME_ENV } from '../../bench/lib/target.js';

const policies = loadDocuments('deploy/kubernetes/policies.yaml');
const files = { sidecar: loadDocuments('deploy/kubernetes/sidecar.yaml'), shared: loadDocuments('deploy/kubernetes/shared.yaml') };
const monitors = loadDocuments('deploy/prometheus/servicemonitor.yaml');
const all = [...policies, ...files.sidecar, ...files.shared];
const find = (docs: Array<Record<string, any>>, kind: string, name?: string) => docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
const defaults = parseConfig({});

/** Each Deployment's Portcullis container, its pod spec and its configuration (read through the mounted ConfigMap). */
const portcullis = Object.entries(files).map(([file, docs]) => {
  const deployment = find(docs, 'Deployment')[0]!;
  const pod = deployment.spec.template.spec;
  const container = pod.containers.find((c: { name: string }) => c.name === 'portcullis');
  const configPath = container.args[container.args.indexOf('--config') + 1] as string;
  const mount = container.volumeMounts.find((m: { mountPath: string }) => m.mountPath === configPath);
  const volume = pod.volumes.find((v: { name: string }) => v.name === mount?.name);
  const configMap = find(all, 'ConfigMap', volume?.configMap?.name)[0];
  const text = configMap?.data?.[mount?.subPath] as string;
  return { file, docs, deployment, pod, container, configPath, mount, configMap, text, config: text ? validateConfig(text, `deploy/kubernetes/${file}.yaml ${configMap!.metadata.name}`, portcullisEnvNames(docs)) : (undefined as unknown as Readonly<Config>) };
});
const portNamed = (container: { ports: Array<{ name: string; containerPort: number }> }, name: string) => container.ports.find((p) => p.name === name)?.containerPort;

describe('Kubernetes manifests (deploy/kubernetes/)', () => {
  it('parse, every document a named object of a known kind', () => {
    expect(all.map((d) => `${d.kind}/${d.metadata?.name}`).sort()).toEqual([
      'ConfigMap/portcullis-config',
      'ConfigMap/portcullis-policies',
      'ConfigMap/portcullis-sidecar-config',
      'Deployment/documents-api',
      'Deployment/portcullis',
      'PodDisruptionBudget/portcullis',
      'Secret/portcullis',
      'Secret/portcullis-sidecar',
      'Service/documents-api',
      'Service/portcullis',
    ]);
    for (const d of all) expect(d.apiVersion, `${d.kind}/${d.metadata.name}`).toMatch(/^(v1|apps\/v1|policy\/v1)$/);
  });

  it('keep the policies ConfigMap equal to the example policies/ folder (its files; tests/ is not deployed)', () => {
    const expected = Object.fromEntries(readdirSync(EXAMPLE_POLICIES).filter((f) => statSync(join(EXAMPLE_POLICIES, f)).isFile()).sort().map((f) => [f, readFileSync(join(EXAMPLE_POLICIES, f), 'utf8')]));
    expect(policies[0]!.data).toEqual(expected);
  });

  it('run `serve --config` on a file the mounted ConfigMap provides, which the configuration schema accepts', () => {
    for (const p of portcullis) {
      expect(p.container.args.slice(0, 2), p.file).toEqual(['serve', '--config']);
      expect(p.mount, `${p.file}: ${p.configPath} is not mounted`).toBeDefined();
      expect(p.text, `${p.file}: the ConfigMap key ${p.mount?.subPath} is missing`).toEqual(expect.any(String));
      expect(p.config.mode, p.file).toBe('production');
      expect(p.config.dev_issuer.enabled).toBe(false);
      // The policy folder the config names is where the policies ConfigMap is mounted, whole (so edits arrive).
      const mount = p.container.volumeMounts.find((m: { mountPath: string }) => m.mountPath === p.config.policies.dir);
      expect(mount?.subPath, `${p.file}: policies.dir is not a mounted folder`).toBeUndefined();
      expect(p.pod.volumes.find((v: { name: string }) => v.name === mount.name).configMap.name).toBe('portcullis-policies');
    }
  });

  it('name only ConfigMaps, Secrets and keys that exist', () => {
    for (const p of portcullis) {
      for (const v of p.pod.volumes) expect(find(all, 'ConfigMap', v.configMap.name), `${p.file}: ConfigMap ${v.configMap.name}`).toHaveLength(1);
      for (const e of p.container.env) {
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref) continue;
        const secret = find(p.docs, 'Secret', ref.name)[0];
        expect(secret, `${p.file}: Secret ${ref.name}`).toBeDefined();
        expect(Object.keys(secret!.stringData ?? secret!.data), `${p.file}: Secret ${ref.name} key ${ref.key}`).toContain(ref.key);
      }
    }
  });

  it('pass only environment variables the configuration reads', () => {
    for (const p of portcullis) {
      for (const e of p.container.env) expect(knownEnv(e.name), `${p.file}: ${e.name}`).toBe(true);
    }
    // The shared deployment's secrets stay out of the ConfigMap: the KEK and admin key come from the Secret.
    const shared = portcullis.find((p) => p.file === 'shared')!;
    expect(shared.container.env.map((e: { name: string }) => e.name)).toEqual(expect.arrayContaining(['PORTCULLIS_KEK', 'PORTCULLIS_ADMIN_API_KEY', 'PORTCULLIS_STORE_URL', 'PORTCULLIS_CACHE_URL']));
    const inConfigMap = parseYaml(shared.text) as { token_module?: { kek?: string }; admin?: { api_key?: string } };
    expect(inConfigMap.token_module?.kek).toBeUndefined();
    expect(inConfigMap.admin?.api_key).toBeUndefined();
  });

  it('declare container ports for the listeners their config binds, at the schema defaults', () => {
    expect([portOf(defaults.grpc.address), portOf(defaults.http.address), portOf(defaults.admin.address)]).toEqual([9191, 9000, 9001]);
    for (const p of portcullis) {
      const ports = Object.fromEntries(p.container.ports.map((x: { name: string; containerPort: number }) => [x.containerPort, x.name]));
      expect(ports[portOf(p.config.grpc.address)], `${p.file}: gRPC port`).toBeDefined();
      expect(ports[portOf(p.config.admin.address)], `${p.file}: admin port`).toBeDefined();
      expect(portOf(p.config.grpc.address)).toBe(portOf(defaults.grpc.address));
      expect(portOf(p.config.admin.address)).toBe(portOf(defaults.admin.address));
      expect(portOf(p.config.http.address)).toBe(portOf(defaults.http.address));
      for (const x of p.container.ports) expect(x.name, 'IANA_SVC_NAME: lower-case letters, digits, inner dashes, at most 15').toMatch(/^(?=.{1,15}$)(?=.*[a-z])[a-z0-9]+(-[a-z0-9]+)*$/);
    }
  });

  it('probe /health and /ready on the admin listener, bound beyond loopback so the kubelet reaches it', () => {
    for (const p of portcullis) {
      const probes = { startupProbe: '/ready', readinessProbe: '/ready', livenessProbe: '/health' } as const;
      for (const [kind, path] of Object.entries(probes)) {
        const probe = p.container[kind].httpGet;
        expect(probe.path, `${p.file} ${kind}`).toBe(path);
        expect(portNamed(p.container, probe.port), `${p.file} ${kind} port`).toBe(portOf(p.config.admin.address));
      }
      expect(hostOf(p.config.admin.address)).toBe('0.0.0.0');
    }
    const sidecar = portcullis.find((p) => p.file === 'sidecar')!;
    expect(hostOf(sidecar.config.grpc.address), 'the sidecar decides for its own pod only').toBe('127.0.0.1');
  });

  it('serve each probe path on the listener the probe points at (the real server with the sidecar configuration)', async () => {
    const { config } = portcullis.find((p) => p.file === 'sidecar')!;
    // Free loopback ports, the example policies, no issuer (its JWKS is unreachable here), and the
    // in-memory store the helper uses (refused in production): the listeners and routes are the sidecar's.
    const c = structuredClone(config) as Config;
    const sidecar = await startSidecar({ ...c, mode: 'development', issuers: [], grpc: { ...c.grpc, address: '127.0.0.1:0' }, admin: { ...c.admin, address: '127.0.0.1:0' }, http: { ...c.http, address: '127.0.0.1:0' }, policies: { ...c.policies, dir: EXAMPLE_POLICIES } });
    try {
      for (const path of ['/health', '/ready']) {
        const res = await fetch(`http://127.0.0.1:${sidecar.server.adminPort}${path}`);
        expect(res.status, path).toBe(200);
      }
      sidecar.server.drain();
      expect((await fetch(`http://127.0.0.1:${sidecar.server.adminPort}/ready`)).status).toBe(503);
    } finally {
      await sidecar.close();
    }
  });

  it('give a terminating pod longer than the drain window and shutdown timeout', () => {
    for (const p of portcullis) {
      const { drain_seconds: drain, shutdown_timeout_seconds: timeout } = p.config.lifecycle;
      expect(p.pod.terminationGracePeriodSeconds, p.file).toBeGreaterThan(drain + timeout);
    }
    const shared = portcullis.find((p) => p.file === 'shared')!;
    const live = shared.container.livenessProbe;
    expect(live.periodSeconds * live.failureThreshold).toBe(shared.config.lifecycle.store_unavailable_exit_seconds);
  });

  it('request resources sized from docs/performance.md: a memory limit above the peak RSS measured for check, no CPU limit', () => {
    const perf = readFileSync(join(ROOT, 'docs/performance.md'), 'utf8');
    const peaks = [...perf.matchAll(/^\| check \| (?:example|uncached) \|.*\| ([\d.]+) \|$/gm)].map((m) => Number(m[1]));
    expect(peaks.length).toBeGreaterThan(3);
    const mib = (q: string) => Number(/^(\d+)Mi$/.exec(q)![1]);
    for (const p of portcullis) {
      const { requests, limits } = p.container.resources;
      expect(requests.cpu, p.file).toBeDefined();
      expect(limits.cpu, `${p.file}: a CPU limit throttles the request path`).toBeUndefined();
      expect(mib(limits.memory) * 1.048576, `${p.file}: memory limit in MB`).toBeGreaterThan(Math.max(...peaks));
      expect(mib(requests.memory)).toBeLessThanOrEqual(mib(limits.memory));
    }
  });

  it('the bench measures Portcullis with the runtime settings the image sets (Dockerfile ENV)', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    const env = Object.fromEntries([...finalStage.matchAll(/^\s*(?:ENV\s+)?([A-Z_]+)=(\S+?)\s*\\?$/gm)].map((m) => [m[1]!, m[2]!]));
    for (const [name, value] of Object.entries(IMAGE_RUNTIME_ENV)) expect(env[name], name).toBe(value);
  });

  it('run as the numeric non-root user of the image, read-only, without privileges', () => {
    const uid = Number(/^USER (\d+):(\d+)$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))![1]);
    for (const p of portcullis) {
      expect(p.pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: uid });
      expect(p.container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    }
  });

  it('select their own pods (Deployment selector, Service selector and target ports, PodDisruptionBudget)', () => {
    for (const p of portcullis) {
      const labels = p.deployment.spec.template.metadata.labels;
      expect(labels).toMatchObject(p.deployment.spec.selector.matchLabels);
      for (const svc of find(p.docs, 'Service')) {
        expect(labels).toMatchObject(svc.spec.selector);
        const names = p.pod.containers.flatMap((c: { ports: Array<{ name: string }> }) => c.ports.map((x) => x.name));
        for (const port of svc.spec.ports) expect(names, `${p.file} Service port ${port.name}`).toContain(port.targetPort);
      }
    }
    const pdb = find(files.shared, 'PodDisruptionBudget')[0]!;
    const shared = portcullis.find((p) => p.file === 'shared')!;
    expect(shared.deployment.spec.template.metadata.labels).toMatchObject(pdb.spec.selector.matchLabels);
    expect(pdb.spec.minAvailable).toBeLessThan(shared.deployment.spec.replicas);
  });

  it('carry the labels and port names the PodMonitor and ServiceMonitor of deploy/prometheus/ select', () => {
    const podMonitor = find(monitors, 'PodMonitor')[0]!;
    const serviceMonitor = find(monitors, 'ServiceMonitor')[0]!;
    const sidecar = portcullis.find((p) => p.file === 'sidecar')!;
    expect(sidecar.deployment.spec.template.metadata.labels).toMatchObject(podMonitor.spec.selector.matchLabels);
    for (const e of podMonitor.spec.podMetricsEndpoints) {
      expect(e.path).toBe('/metrics');
      expect(portNamed(sidecar.container, e.port)).toBe(portOf(sidecar.config.admin.address));
    }
    const service = find(files.shared, 'Service', 'portcullis')[0]!;
    const shared = portcullis.find((p) => p.file === 'shared')!;
    expect(service.metadata.labels).toMatchObject(serviceMonitor.spec.selector.matchLabels);
    for (const e of serviceMonitor.spec.endpoints) {
      const port = service.spec.ports.find((x: { name: string }) => x.name === e.port);
      expect(portNamed(shared.container, port.targetPort)).toBe(portOf(shared.config.admin.address));
    }
    // The app's Service must not be scraped as if it were Portcullis.
    expect(find(files.sidecar, 'Service')[0]!.metadata.labels).not.toMatchObject(serviceMonitor.spec.selector.matchLabels);
  });
});
