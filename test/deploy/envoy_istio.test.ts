import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { HEALTH_SERVICES } from '../../src/grpc/health.js';
import { hostOf, loadDocuments, loadYaml, portcullisEnvNames, portOf, validateConfig } from './manifests.js';

const defaults = parseConfig({});
const EXT_AUTHZ = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
const PER_ROUTE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute';

describe('static Envoy configuration (deploy/envoy/envoy.yaml)', () => {
  const envoy = loadYaml('deploy/envoy/envoy.yaml');
  const manager = envoy.static_resources.listeners[0].filter_chains[0].filters.find((f: { name: string }) => f.name === 'envoy.filters.network.http_connection_manager').typed_config;
  const filters = manager.http_filters as Array<{ name: string; typed_config: Record<string, any> }>;
  const extAuthz = filters.find((f) => f.typed_config['@type'] === EXT_AUTHZ)!;
  const cluster = envoy.static_resources.clusters.find((c: { name: string }) => c.name === extAuthz.typed_config.grpc_service.envoy_grpc.cluster_name);

  it('asks Portcullis over gRPC with the v3 API, failing closed, with a timeout', () => {
    const c = extAuthz.typed_config;
    expect(c.transport_api_version).toBe('V3');
    expect(c.failure_mode_allow).toBe(false);
    expect(c.grpc_service.timeout).toMatch(/^\d+(\.\d+)?s$/);
    expect(parseFloat(c.grpc_service.timeout)).toBeGreaterThan(0);
    expect(parseFloat(c.grpc_service.timeout)).toBeLessThanOrEqual(1);
    expect(c.status_on_error).toEqual({ code: 'ServiceUnavailable' });
    expect(c.http_service).toBeUndefined();
  });

  it('forwards the body as bytes up to request_body.max_bytes and never a truncated one; sends the peer certificate', () => {
    const c = extAuthz.typed_config;
    expect(c.with_request_body).toEqual({ max_request_bytes: defaults.request_body.max_bytes, allow_partial_message: false, pack_as_bytes: true });
    expect(c.include_peer_certificate).toBe(true);
    expect(c.encode_raw_headers).toBe(true);
  });

  it('runs ext_authz before the router, and its per-route settings name that filter', () => {
    expect(filters.at(-1)!.name).toBe('envoy.filters.http.router');
    expect(filters.indexOf(extAuthz)).toBeLessThan(filters.length - 1);
    const routes = manager.route_config.virtual_hosts.flatMap((v: { routes: unknown[] }) => v.routes) as Array<{ typed_per_filter_config?: Record<string, { '@type': string }> }>;
    const perRoute = routes.flatMap((r) => Object.entries(r.typed_per_filter_config ?? {}));
    expect(perRoute.length).toBeGreaterThan(0);
    for (const [name, config] of perRoute) {
      expect(name).toBe(extAuthz.name);
      expect(config['@type']).toBe(PER_ROUTE);
    }
  });

  it('reaches Portcullis on its default gRPC address over HTTP/2, health-checking a service Portcullis reports', () => {
    expect(cluster.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config).toHaveProperty('http2_protocol_options');
    const address = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    expect(`${address.address}:${address.port_value}`).toBe(defaults.grpc.address);
    const service = cluster.health_checks[0].grpc_health_check.service_name;
    expect(HEALTH_SERVICES).toContain(service);
  });
});

describe('Istio configuration (deploy/istio/)', () => {
  const mesh = loadYaml('deploy/istio/mesh-config.yaml');
  const providers = mesh.spec.meshConfig.extensionProviders as Array<{ name: string; envoyExtAuthzGrpc: Record<string, any> }>;
  const [entry] = loadDocuments('deploy/istio/service-entry.yaml');
  const [policy] = loadDocuments('deploy/istio/authorization-policy.yaml');
  const sidecarDocs = loadDocuments('deploy/kubernetes/sidecar.yaml');
  const sharedDocs = loadDocuments('deploy/kubernetes/shared.yaml');
  const configOf = (docs: Array<Record<string, any>>, name: string) => validateConfig(docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === name)!.data['config.yaml'], name, portcullisEnvNames(docs));

  it('registers gRPC providers on the gRPC port, failing closed, with a timeout and the body limit of Portcullis', () => {
    expect(providers.map((p) => p.name).sort()).toEqual(['portcullis', 'portcullis-sidecar']);
    for (const { envoyExtAuthzGrpc: p } of providers) {
      expect(p.port).toBe(portOf(defaults.grpc.address));
      expect(p.failOpen).toBe(false);
      expect(p.timeout).toMatch(/^\d+ms$/);
      expect(p.includeRequestBodyInCheck).toEqual({ maxRequestBytes: defaults.request_body.max_bytes, allowPartialMessage: false, packAsBytes: true });
    }
  });

  it('resolves the sidecar provider to the Portcullis container in the same pod (ServiceEntry on 127.0.0.1)', () => {
    const sidecar = providers.find((p) => p.name === 'portcullis-sidecar')!.envoyExtAuthzGrpc;
    expect(entry!.kind).toBe('ServiceEntry');
    expect(entry!.spec.hosts).toEqual([sidecar.service]);
    expect(entry!.spec).toMatchObject({ resolution: 'STATIC', endpoints: [{ address: '127.0.0.1' }], ports: [{ number: sidecar.port, protocol: 'GRPC' }] });
    const config = configOf(sidecarDocs, 'portcullis-sidecar-config');
    expect(config.grpc.address).toBe(`127.0.0.1:${sidecar.port}`);
  });

  it('points the shared provider at the shared Service, whose gRPC port it names', () => {
    const shared = providers.find((p) => p.name === 'portcullis')!.envoyExtAuthzGrpc;
    const service = sharedDocs.find((d) => d.kind === 'Service')!;
    expect(shared.service).toBe(`${service.metadata.name}.portcullis.svc.cluster.local`);
    expect(service.spec.ports.find((p: { port: number }) => p.port === shared.port)).toMatchObject({ name: 'grpc', appProtocol: 'grpc' });
    // The sidecars fetch the shared token module's JWKS through the same Service.
    const issuer = configOf(sidecarDocs, 'portcullis-sidecar-config').issuers[0]!;
    const jwks = new URL(issuer.jwks_uri!);
    expect(jwks.hostname).toBe(shared.service);
    expect(Number(jwks.port)).toBe(portOf(configOf(sharedDocs, 'portcullis-config').http.address));
    expect(issuer.issuer).toBe(configOf(sharedDocs, 'portcullis-config').token_module.issuer);
    expect(hostOf(configOf(sharedDocs, 'portcullis-config').grpc.address)).toBe('0.0.0.0');
  });

  it('has a CUSTOM AuthorizationPolicy naming a registered provider and selecting the sidecar example', () => {
    expect(policy).toMatchObject({ apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', spec: { action: 'CUSTOM' } });
    expect(providers.map((p) => p.name)).toContain(policy!.spec.provider.name);
    const deployment = sidecarDocs.find((d) => d.kind === 'Deployment')!;
    expect(deployment.spec.template.metadata.labels).toMatchObject(policy!.spec.selector.matchLabels);
  });
});
