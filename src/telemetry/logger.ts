import { context, trace } from '@opentelemetry/api';
import { pino, type Logger } from 'pino';

export type { Logger };

/** Field names whose values are secrets wherever they appear (one level deep too). */
const SECRET_FIELDS = ['token', 'authorization', 'password', 'access_token', 'refresh_token', 'id_token', 'client_secret', 'client_assertion', 'code_verifier', 'mfa_token', 'cookie'];

/**
 * JSON logs. Redaction is a second line of defence: code never logs tokens, passwords or
 * session ids, and these paths are censored should one slip into a logged object.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'portcullis' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Lines written inside a span carry its ids (only when a tracing SDK is registered).
      mixin: () => {
        const span = trace.getSpan(context.active());
        if (!span) return {};
        const { traceId, spanId } = span.spanContext();
        return { trace_id: traceId, span_id: spanId };
      },
      redact: {
        paths: [
          ...SECRET_FIELDS,
          ...SECRET_FIELDS.map((f) => `*.${f}`),
          'headers.authorization',
          'headers.cookie',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
