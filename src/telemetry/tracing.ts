import { SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';

/**
 * Spans go through the OpenTelemetry API: without a registered SDK they cost next to nothing;
 * with one (OTLP export, or an in-memory exporter in tests) they form the `auth.*` trees.
 * Attributes never carry usernames, passwords, tokens or session ids.
 */
const tracer = trace.getTracer('portcullis');

/** The internal reason of a failure, when the error carries one (OAuthError.reason, PortcullisError.code). */
function reasonOf(err: unknown): string | undefined {
  const e = err as { reason?: unknown; code?: unknown };
  return typeof e?.reason === 'string' ? e.reason : typeof e?.code === 'string' ? e.code : undefined;
}

/** Runs `fn` in a child span of the active one; a thrown error marks the span failed with its reason. */
export async function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      const reason = reasonOf(err);
      if (reason) span.setAttribute('auth.failure_reason', reason);
      span.setStatus({ code: SpanStatusCode.ERROR, message: reason ?? 'error' });
      throw err;
    } finally {
      span.end();
    }
  });
}
