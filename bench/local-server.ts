import { once } from 'node:events';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A bench server: where it listens, and how to stop it. */
export interface LocalServer {
  url: string;
  close: () => Promise<void>;
}

/** Stops the server and drops its open (keep-alive) connections, rather than waiting for them to idle out. */
export function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  return closed;
}

/** Listens on 127.0.0.1 at a port the OS picks; `close` stops the server, then runs `closeRest`. */
export async function listenLocally(server: Server, closeRest: () => Promise<void>): Promise<LocalServer> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await closeServer(server);
      await closeRest();
    },
  };
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'te', 'trailer', 'host']);

/** An upstream answer's headers, as a proxy passes them on (without the hop-by-hop ones). */
export function responseHeaders(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name.toLowerCase())) out[name] = value;
  }
  return out;
}
