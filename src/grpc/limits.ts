/** Calls one HTTP/2 connection may have in flight by default (config `grpc.max_concurrent_streams`). */
export const DEFAULT_MAX_CONCURRENT_STREAMS = 128;
