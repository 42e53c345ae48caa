/**
 * A TCP relay that delays every chunk by `delayMs` in each direction: a slow Redis (or any slow
 * server) for tests that need one, without touching the server itself. The delay can change while
 * connections are open; 0 passes data straight through.
 */
import net from 'node:net';

export class SlowProxy {
  delayMs = 0;
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server, readonly port: number) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<SlowProxy> {
    let self: SlowProxy | null = null;
    const server = net.createServer((client) => {
      const upstream = net.connect(targetPort, targetHost);
      const p = self as SlowProxy;
      for (const s of [client, upstream]) {
        p.sockets.add(s);
        s.on('close', () => p.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      const pipe = (from: net.Socket, to: net.Socket) => {
        // in order, each chunk `delayMs` after it arrived
        let chain = Promise.resolve();
        from.on('data', (d: Buffer) => {
          const due = Date.now() + p.delayMs;
          chain = chain.then(() => new Promise<void>((r) => setTimeout(r, Math.max(0, due - Date.now())))).then(() => {
            if (!to.destroyed) to.write(d);
          });
        });
        from.on('end', () => void chain.then(() => to.end()));
      };
      pipe(client, upstream);
      pipe(upstream, client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    self = new SlowProxy(server, (server.address() as net.AddressInfo).port);
    return self;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
