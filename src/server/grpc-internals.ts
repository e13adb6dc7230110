import type { Http2Server, ServerOptions } from "node:http2";
import type { Server } from "@grpc/grpc-js";
import type { Logger } from "pino";

/**
 * The grpc-js Server fields this server reaches into, for what grpc-js has no API for
 * (flow-control windows, connection limits, the list of methods served). Each accessor checks
 * the field's shape at run time and, when a grpc-js release changed it, logs what is lost and
 * returns undefined.
 */
interface ServerInternals {
  commonServerOptions?: ServerOptions;
  http2Servers?: Map<Http2Server, unknown>;
  handlers?: Map<string, { type?: unknown }>;
}

/** A method a server serves: its path (`/package.Service/Method`) and how it streams. */
export interface ServedMethod {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
}

/**
 * The options grpc-js creates its HTTP/2 servers with: changes take effect on `bindAsync`.
 * `purpose` says, in the warning, what cannot be done without them.
 */
export function http2ServerOptions(
  server: Server,
  log: Logger,
  purpose: string,
): ServerOptions | undefined {
  const options = (server as unknown as ServerInternals).commonServerOptions;
  if (typeof options === "object" && options !== null) return options;
  log.warn(`cannot ${purpose}: grpc-js internals changed`);
  return undefined;
}

/** The HTTP/2 servers grpc-js listens with, one per bound address: call after `bindAsync`. */
export function listeningHttp2Servers(
  server: Server,
  log: Logger,
  purpose: string,
): Http2Server[] | undefined {
  const servers = (server as unknown as ServerInternals).http2Servers;
  if (servers instanceof Map) return [...servers.keys()];
  log.warn(`cannot ${purpose}: grpc-js internals changed`);
  return undefined;
}

/** Every method of every service added to `server` (its own, health, reflection). */
export function servedMethods(
  server: Server,
  log: Logger,
  purpose: string,
): ServedMethod[] | undefined {
  const handlers = (server as unknown as ServerInternals).handlers;
  const methods: ServedMethod[] = [];
  for (const [path, handler] of handlers instanceof Map ? handlers : []) {
    const { type } = handler;
    if (type !== "unary" && type !== "clientStream" && type !== "serverStream" && type !== "bidi") {
      break;
    }
    methods.push({
      path,
      requestStream: type === "clientStream" || type === "bidi",
      responseStream: type === "serverStream" || type === "bidi",
    });
  }
  if (handlers instanceof Map && methods.length === handlers.size) return methods;
  log.warn(`cannot ${purpose}: grpc-js internals changed`);
  return undefined;
}
