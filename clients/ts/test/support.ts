import { createServer, type Server, Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { afterEach } from "vitest";
import type { Config } from "../../../src/config.js";
import { startTestServer, type TestServer } from "../../../test/helpers/test-server.js";
import { SessionStoreClient, type SessionStoreClientOptions } from "../src/index.js";

/** A real server on 127.0.0.1:0 and a client of this package talking to it. */
export interface ClientFixture {
  server: TestServer;
  client: SessionStoreClient;
}

/**
 * Registers an afterEach that closes the clients, servers and proxies the returned functions
 * made during the test, and returns those functions.
 */
export function fixturesClosedAfterEach(defaults: Partial<Config> = {}) {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return {
    /** Starts a test server with `defaults` then `overrides`; closed (data removed) after the test. */
    async server(overrides: Partial<Config> = {}): Promise<TestServer> {
      const server = await startTestServer({ ...defaults, ...overrides });
      cleanups.push(() => server.close());
      return server;
    },
    /** A client of `address`, closed after the test. */
    client(address: string, options: SessionStoreClientOptions = {}): SessionStoreClient {
      const client = new SessionStoreClient(address, { credentials: "insecure", ...options });
      cleanups.push(() => client.close());
      return client;
    },
    /** A TCP proxy to `target` (which terminates TLS if given a key and certificate), closed after the test. */
    async proxy(target: string, tls?: { key: Buffer; cert: Buffer }): Promise<TcpProxy> {
      const proxy = await TcpProxy.start(target, tls);
      cleanups.push(() => proxy.close());
      return proxy;
    },
    /** A server and a client of it. */
    async start(
      overrides: Partial<Config> = {},
      options: SessionStoreClientOptions = {},
    ): Promise<ClientFixture> {
      const server = await this.server(overrides);
      return { server, client: this.client(server.server.address, options) };
    },
  };
}

/**
 * A TCP proxy on 127.0.0.1:0, standing for the network between client and server: it can drop
 * every connection (as a failing link or a restarting peer does) and stop passing bytes on (a
 * server too slow to read, acknowledgements lost). Given a key and certificate, it also stands
 * for a TLS-terminating load balancer in front of the plaintext test server.
 */
export class TcpProxy {
  readonly #server: Server;
  readonly #pairs = new Set<{ client: Socket; upstream: Socket }>();
  readonly #paused = new Set<"requests" | "responses">();
  /** Connections accepted so far. */
  connections = 0;

  private constructor(
    server: Server,
    readonly address: string,
    public target: string,
  ) {
    this.#server = server;
  }

  static async start(target: string, tls?: { key: Buffer; cert: Buffer }): Promise<TcpProxy> {
    const server = tls ? createTlsServer({ ...tls, ALPNProtocols: ["h2"] }) : createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    const proxy = new TcpProxy(server, `127.0.0.1:${port}`, target);
    server.on(tls ? "secureConnection" : "connection", (client: Socket) => proxy.#forward(client));
    return proxy;
  }

  #forward(client: Socket): void {
    this.connections++;
    const [host, port] = splitAddress(this.target);
    const upstream = new Socket();
    upstream.connect(port, host);
    const pair = { client, upstream };
    this.#pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.#pairs.delete(pair);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    this.#applyPauses(pair);
  }

  /** Destroys every open connection, in both directions, at once; returns how many there were. */
  dropConnections(): number {
    const dropped = this.#pairs.size;
    for (const { client, upstream } of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.#pairs.clear();
    return dropped;
  }

  /**
   * Stops passing bytes on: the client's to the server ("requests", a server too slow to read),
   * the server's to the client ("responses", acknowledgements lost on the way), or both.
   */
  pause(direction: Direction = "both"): void {
    for (const flow of flowsOf(direction)) this.#paused.add(flow);
    for (const pair of this.#pairs) this.#applyPauses(pair);
  }

  resume(direction: Direction = "both"): void {
    for (const flow of flowsOf(direction)) this.#paused.delete(flow);
    for (const pair of this.#pairs) this.#applyPauses(pair);
  }

  #applyPauses({ client, upstream }: { client: Socket; upstream: Socket }): void {
    for (const [flow, from, to] of [
      ["requests", client, upstream],
      ["responses", upstream, client],
    ] as const) {
      from.unpipe(to);
      if (this.#paused.has(flow)) from.pause();
      else from.pipe(to);
    }
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

type Direction = "requests" | "responses" | "both";

function flowsOf(direction: Direction): ("requests" | "responses")[] {
  return direction === "both" ? ["requests", "responses"] : [direction];
}

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(":");
  return [address.slice(0, colon), Number(address.slice(colon + 1))];
}

/** `count` distinct messages as objects, tagged so a test can tell them apart. */
export function objects(tag: string, count: number, from = 0): { tag: string; n: number }[] {
  return Array.from({ length: count }, (_, index) => ({ tag, n: from + index }));
}

/** Everything an async iterable yields. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
