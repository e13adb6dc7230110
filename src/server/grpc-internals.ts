import type { Http2Server, ServerOptions } from "node:http2";
import type { Server } from "@grpc/grpc-js";
import type { Logger } from "pino";

/**
 * The two grpc-js Server fields this server reaches into, for what grpc-js has no option for
 * (flow-control windows, connection limits). Each accessor checks the field's shape at run time
 * and, when a grpc-js release changed it, logs what is lost and returns undefined.
 */
interface ServerInternals {
  commonServerOptions?: ServerOptions;
  http2Servers?: Map<Http2Server, unknown>;
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
