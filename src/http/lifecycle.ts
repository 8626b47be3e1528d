import type { FastifyInstance } from 'fastify';

/**
 * While the process drains, every answer asks the HTTP/1.1 client to close its connection, so its
 * next request opens a new one (through the Service or load balancer, to another instance) instead
 * of reaching this one after its listener has closed.
 */
export function closeConnectionsWhileDraining(app: FastifyInstance, draining: () => boolean): void {
  app.addHook('onSend', async (_req, reply, payload) => {
    if (draining()) reply.header('connection', 'close');
    return payload;
  });
}

/**
 * Stops accepting connections and waits up to `timeoutMs` for the requests in flight; then cuts
 * whatever is left. Resolves true when nothing had to be cut.
 */
export async function closeListener(app: FastifyInstance, timeoutMs: number): Promise<boolean> {
  const closed = app.close().then(() => true);
  // A keep-alive connection whose request finishes after close() began would otherwise stay open
  // until its keep-alive timeout; close each one as soon as it is idle.
  const idle = setInterval(() => app.server.closeIdleConnections(), 50);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  try {
    const clean = await Promise.race([closed, timedOut]);
    if (!clean) {
      app.server.closeAllConnections();
      await closed;
    }
    return clean;
  } finally {
    clearInterval(idle);
    clearTimeout(timer);
  }
}
