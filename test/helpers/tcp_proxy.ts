import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy in front of a real server (Redis), to take it away and bring it back
 * without touching the server other tests share: `stop()` drops every connection and stops
 * listening (a stopped server), `hang()` keeps connections open but forwards nothing (a server
 * that no longer answers), `start()` listens again on the same port.
 */
export interface TcpProxy {
  port: number;
  url(scheme?: string): string;
  start(): Promise<void>;
  stop(): Promise<void>;
  hang(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let hanging = false;
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: targetHost, port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.on('data', (d) => void (hanging || upstream.write(d)));
    upstream.on('data', (d) => void (hanging || client.write(d)));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const listen = (port: number) => new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
  await listen(0);
  const port = (server.address() as { port: number }).port;
  const stop = async () => {
    for (const s of sockets) s.destroy();
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    port,
    url: (scheme = 'redis') => `${scheme}://127.0.0.1:${port}`,
    async start() {
      hanging = false;
      await listen(port);
    },
    stop,
    hang() {
      hanging = true;
    },
    close: stop,
  };
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
