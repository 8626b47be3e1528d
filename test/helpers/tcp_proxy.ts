import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy in front of a real server (PostgreSQL, Redis), to take the server away and
 * bring it back without touching the server other tests share.
 */
export interface TcpProxy {
  port: number;
  /** Connections forwarded since start. */
  readonly accepted: number;
  /** `scheme://127.0.0.1:<port>`. */
  url(scheme?: string): string;
  /** A stopped server: drops every connection and stops listening (new ones are refused by the OS). */
  stop(): Promise<void>;
  /** Listens again on the same port (and forwards again after `hang`). */
  start(): Promise<void>;
  /** A server that no longer answers: connections stay open, nothing is forwarded. */
  hang(): void;
  /** A network partition: drops every open connection mid-stream and closes new ones at once. */
  cut(): void;
  /** The server restarting: closes new connections at once, leaves open ones alone. */
  refuse(): void;
  /** Undoes `cut`, `refuse` and `hang`. */
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let open = true;
  let hanging = false;
  let accepted = 0;
  const server: Server = createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    accepted++;
    const upstream = createConnection({ host: target.host, port: target.port });
    const both = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', both).on('close', both);
    }
    client.on('data', (d) => void (hanging || upstream.write(d)));
    upstream.on('data', (d) => void (hanging || client.write(d)));
  });
  const listen = (port: number) => new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  const dropAll = () => {
    for (const s of sockets) s.destroy();
  };
  const stop = async () => {
    dropAll();
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    port,
    get accepted() {
      return accepted;
    },
    url: (scheme = 'redis') => `${scheme}://127.0.0.1:${port}`,
    stop,
    async start() {
      open = true;
      hanging = false;
      if (!server.listening) await listen(port);
    },
    hang() {
      hanging = true;
    },
    cut() {
      open = false;
      dropAll();
    },
    refuse() {
      open = false;
    },
    restore() {
      open = true;
      hanging = false;
    },
    close() {
      open = false;
      return stop();
    },
  };
}

/** The same URL pointing at the proxy (host and port replaced), with extra query parameters. */
export function viaProxy(url: string, proxy: TcpProxy, params: Record<string, string> = {}): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
