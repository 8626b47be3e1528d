import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP forwarder on loopback between a client and a real server, to take the server away and
 * give it back without touching it. New connections arriving while it is away are closed at once.
 */
export interface TcpProxy {
  port: number;
  /** Connections forwarded since start. */
  readonly accepted: number;
  /** A network partition: drops every open connection mid-stream and refuses new ones. */
  cut(): void;
  /** The server down (as after a restart kills its sessions): refuses new connections, leaves open ones alone. */
  refuse(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let open = true;
  let accepted = 0;
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const server = createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    accepted++;
    const upstream = connect(target.port, target.host);
    track(client);
    track(upstream);
    const both = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', both).on('close', both);
    upstream.on('error', both).on('close', both);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get accepted() {
      return accepted;
    },
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    refuse() {
      open = false;
    },
    restore() {
      open = true;
    },
    close() {
      open = false;
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
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
