import { fromBinary } from '@bufbuild/protobuf';
import { Server as GrpcServer, ServerCredentials, status, type ServiceDefinition, type sendUnaryData } from '@grpc/grpc-js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ExportMetricsServiceRequestSchema, MetricsService } from '../../src/gen/opentelemetry/proto/collector/metrics/v1/metrics_service_pb.js';
import { ExportTraceServiceRequestSchema, TraceService } from '../../src/gen/opentelemetry/proto/collector/trace/v1/trace_service_pb.js';
import type { ResourceMetrics } from '../../src/gen/opentelemetry/proto/metrics/v1/metrics_pb.js';
import type { ResourceSpans } from '../../src/gen/opentelemetry/proto/trace/v1/trace_pb.js';

/** What an OTLP receiver decoded: every export request's resource spans and resource metrics. */
export interface OtlpReceived {
  spans: ResourceSpans[];
  metrics: ResourceMetrics[];
  /** Problems seen (wrong path, content type, undecodable body); tests expect none. */
  problems: string[];
}

export interface OtlpReceiver extends OtlpReceived {
  /** `http://127.0.0.1:<port>` (HTTP: append `/v1/traces` or `/v1/metrics`). */
  url: string;
  close(): Promise<void>;
}

/** A real OTLP/HTTP receiver on loopback: decodes each protobuf export body. */
export async function startOtlpHttpReceiver(): Promise<OtlpReceiver> {
  const got: OtlpReceived = { spans: [], metrics: [], problems: [] };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        if (req.headers['content-type'] !== 'application/x-protobuf') throw new Error(`content-type ${req.headers['content-type']}`);
        const body = Buffer.concat(chunks);
        if (req.url === '/v1/traces') got.spans.push(...fromBinary(ExportTraceServiceRequestSchema, body).resourceSpans);
        else if (req.url === '/v1/metrics') got.metrics.push(...fromBinary(ExportMetricsServiceRequestSchema, body).resourceMetrics);
        else throw new Error(`path ${req.url}`);
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      } catch (err) {
        got.problems.push((err as Error).message);
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(got, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  });
}

const raw = (path: string) => ({ path, requestStream: false, responseStream: false, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: () => Buffer.alloc(0), responseDeserialize: (b: Buffer) => b });

/** A real OTLP/gRPC receiver on loopback (plaintext): the collector's TraceService and MetricsService `Export`. */
export async function startOtlpGrpcReceiver(): Promise<OtlpReceiver> {
  const got: OtlpReceived = { spans: [], metrics: [], problems: [] };
  const server = new GrpcServer();
  const handler = (decode: (b: Buffer) => void) => (call: { request: Buffer }, callback: sendUnaryData<Buffer>) => {
    try {
      decode(call.request);
      callback(null, Buffer.alloc(0));
    } catch (err) {
      got.problems.push((err as Error).message);
      callback({ code: status.INVALID_ARGUMENT, details: 'undecodable export request' });
    }
  };
  server.addService({ Export: raw(`/${TraceService.typeName}/Export`) } as ServiceDefinition, { Export: handler((b) => got.spans.push(...fromBinary(ExportTraceServiceRequestSchema, b).resourceSpans)) });
  server.addService({ Export: raw(`/${MetricsService.typeName}/Export`) } as ServiceDefinition, { Export: handler((b) => got.metrics.push(...fromBinary(ExportMetricsServiceRequestSchema, b).resourceMetrics)) });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return Object.assign(got, {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  });
}
