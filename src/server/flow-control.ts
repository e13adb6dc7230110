import type { Http2Session } from "node:http2";
import type { Server } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { http2ServerOptions, listeningHttp2Servers } from "./grpc-internals.js";

/** Per-stream window: a few 100-message Append requests or Load pages in flight. */
const STREAM_WINDOW_BYTES = 4 << 20;
/** Per-connection window: room for many streams of one client. */
const CONNECTION_WINDOW_BYTES = 32 << 20;

/**
 * Widens the HTTP/2 flow-control windows the server grants its clients. grpc-js keeps Node's
 * defaults (64 KiB per stream and per connection) and has no option to change them, so a client
 * can have about one 45 KB Append request in flight: the windows, not the CPU, limited throughput
 * (bench scenario 1: 220k to 300k msgs/s; durable appends from 64 sessions nearly doubled). Call
 * before binding; `widenConnectionWindows` after. Both log and do nothing if grpc-js changed.
 */
export function widenStreamWindows(server: Server, log: Logger): void {
  const options = http2ServerOptions(server, log, "widen HTTP/2 stream windows");
  if (!options) return;
  // Spread: grpc-js keeps its own settings here (grpc.max_concurrent_streams).
  options.settings = { ...options.settings, initialWindowSize: STREAM_WINDOW_BYTES };
}

export function widenConnectionWindows(server: Server, log: Logger): void {
  for (const http2Server of listeningHttp2Servers(server, log, "widen HTTP/2 connection windows") ??
    []) {
    http2Server.on("session", (session: Http2Session) => {
      session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
    });
  }
}
