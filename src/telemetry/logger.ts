import { context, trace } from '@opentelemetry/api';
import { pino, type Logger } from 'pino';
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import type PinoPretty from 'pino-pretty';
import { currentRequestContext } from './request_context.js';

export type { Logger };
export type LogFormat = 'json' | 'text';

/** Field names whose values are secrets wherever they appear (one level deep too). */
const SECRET_FIELDS = ['token', 'authorization', 'password', 'access_token', 'refresh_token', 'id_token', 'client_secret', 'client_assertion', 'code_verifier', 'mfa_token', 'cookie'];

/**
 * The ids of what is being handled: the request and decision (from the request context) and the
 * active span (only when a tracing SDK is registered). Fields the line itself sets win.
 */
function correlation(): Record<string, string> {
  const request = currentRequestContext();
  const span = trace.getSpan(context.active());
  if (!request && !span) return {};
  const ids: Record<string, string> = {};
  if (request) {
    if (request.request_id) ids.request_id = request.request_id;
    if (request.decision_id) ids.decision_id = request.decision_id;
  }
  if (span) {
    const { traceId, spanId } = span.spanContext();
    ids.trace_id = traceId;
    ids.span_id = spanId;
  }
  return ids;
}

/** Pipe writes up to this size are atomic (POSIX PIPE_BUF on Linux): processes sharing the pipe never tear them. */
const ATOMIC_WRITE_BYTES = 4096;

/**
 * stdout, written synchronously once per turn of the event loop: the lines logged while one turn
 * handles its requests leave together (a write(2) to a pipe costs ~10-20 µs, more than formatting
 * the line), in writes of whole lines of at most 4096 bytes, so that lines from cluster workers
 * sharing the pipe never tear each other (a longer write may be split and interleaved). Error and
 * fatal lines are written at once, with what is pending before them; the process's 'exit' writes
 * whatever is still pending, so nothing is lost when the process exits (a kill that gives no 'exit',
 * SIGKILL or an abort, loses at most the turn's info and debug lines). A line that cannot be written
 * is dropped: once nobody reads stdout (EPIPE) a throwing write would otherwise fail whatever logged
 * it — a request, or a shutdown that then never reached its exit. One batch per process, shared by
 * every logger writing to stdout, so their lines keep their order.
 */
export class StdoutLines {
  private readonly out = pino.destination({ dest: 1, sync: true });
  /** Complete writes waiting, each whole lines of at most ATOMIC_WRITE_BYTES (or one longer line). */
  private readonly full: string[] = [];
  private pending = '';
  private pendingBytes = 0;
  private scheduled = false;
  private readonly flushNow = (): void => this.flush();

  constructor() {
    process.on('exit', this.flushNow);
  }

  write(line: string): boolean {
    const bytes = Buffer.byteLength(line);
    if (this.pendingBytes > 0 && this.pendingBytes + bytes > ATOMIC_WRITE_BYTES) {
      this.full.push(this.pending);
      this.pending = '';
      this.pendingBytes = 0;
    }
    this.pending += line;
    this.pendingBytes += bytes;
    // JSON lines start with their level: error (50) and fatal (60) go out now, not at the end of the turn.
    if (line.startsWith('{"level":5') || line.startsWith('{"level":6')) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
    return true;
  }

  /** Writes what is pending; `done` (pino's logger.flush) is called once it is written. */
  flush(done?: (err?: Error) => void): void {
    this.scheduled = false;
    if (this.pending !== '') this.full.push(this.pending);
    this.pending = '';
    this.pendingBytes = 0;
    for (const text of this.full.splice(0)) {
      try {
        this.out.write(text);
      } catch {
        /* no reader: the lines are dropped */
      }
    }
    done?.();
  }
}

let stdoutLines: StdoutLines | undefined;
/** The process's stdout batch (the process log, and the decision log when it goes to stdout). */
export const stdout = (): StdoutLines => (stdoutLines ??= new StdoutLines());

/** The stdout batch as a stream, for pino-pretty (the text format). */
function stdoutStream(): Writable {
  const lines = stdout();
  return new Writable({
    decodeStrings: false,
    write(line: string, _encoding, done) {
      lines.write(line);
      done();
    },
  });
}

/**
 * Logs as JSON lines, or as text through pino-pretty (`format: text`, for development): the same
 * fields and the same redaction either way, since redaction happens before formatting. Redaction
 * is a second line of defence: code never logs tokens, passwords or session ids, and these paths
 * are censored should one slip into a logged object.
 */
export function createLogger(level: string, destination?: pino.DestinationStream, format: LogFormat = 'json'): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'portcullis' },
    timestamp: pino.stdTimeFunctions.isoTime,
    mixin: correlation,
    redact: {
      paths: [...SECRET_FIELDS, ...SECRET_FIELDS.map((f) => `*.${f}`), 'headers.authorization', 'headers.cookie'],
      censor: '[redacted]',
    },
  };
  if (format === 'text') {
    // Loaded only for the text format (development), like the OTLP exporters only when configured.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
    const out = destination ?? stdoutStream();
    return pino(options, pretty({ destination: out, colorize: false, sync: true, translateTime: 'SYS:standard', ignore: 'pid,hostname,service' }));
  }
  return pino(options, destination ?? stdout());
}
