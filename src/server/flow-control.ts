import type { Http2Server, Http2Session, ServerOptions } from "node:http2";
import type { Server } from "@grpc/grpc-js";
import type { Logger } from "pino";

/** Per-stream window: a few 100-message Append requests or Load pages in flight. */
const STREAM_WINDOW_BYTES = 4 << 20;
/** Per-connection window: room for many streams of one client. */
const CONNECTION_WINDOW_BYTES = 32 << 20;

/** The grpc-js internals this module reaches into; both are checked before use. */
interface ServerInternals {
  commonServerOptions?: ServerOptions;
  http2Servers?: Map<Http2Server, unknown>;
}

/**
 * Widens the HTTP/2 flow-control windows the server grants its clients. grpc-js keeps Node's
 * defaults (64 KiB per stream and per connection) and has no option to change them, so a client
 * can have about one 45 KB Append request in flight: the windows, not the CPU, limited throughput
 * (bench scenario 1: 220k to 300k msgs/s; durable appends from 64 sessions nearly doubled). Call
 * before binding; `widenConnectionWindows` after. Both log and do nothing if grpc-js changed.
 */
export function widenStreamWindows(server: Server, log: Logger): void {
  const options = (server as unknown as ServerInternals).commonServerOptions;
  if (typeof options !== "object") {
    log.warn("cannot widen HTTP/2 stream windows: grpc-js internals changed");
    return;
  }
  options.settings = { ...options.settings, initialWindowSize: STREAM_WINDOW_BYTES };
}

export function widenConnectionWindows(server: Server, log: Logger): void {
  const servers = (server as unknown as ServerInternals).http2Servers;
  if (!(servers instanceof Map)) {
    log.warn("cannot widen HTTP/2 connection windows: grpc-js internals changed");
    return;
  }
  for (const http2Server of servers.keys()) {
    http2Server.on("session", (session: Http2Session) => {
      session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
    });
  }
}
