/**
 * The bare gRPC baseline: a grpc-js server whose Append answers each request at once with a
 * small AppendResponse, storing nothing. It uses the same generated service definition (so the
 * same encoding) and the server's HTTP/2 settings: its channel options at their defaults and its
 * widened flow-control windows, by the server's own code, so comparing the real server with it
 * isolates what the server itself costs. Run as a child process by the bench; prints one JSON
 * line with the address once it listens.
 */
import { type handleBidiStreamingCall, Server, ServerCredentials } from "@grpc/grpc-js";
import { pino } from "pino";
import {
  type AppendRequest,
  type AppendResponse,
  SessionStoreService,
} from "../gen/sessionstore/v1/session_store.js";
import { loadConfig } from "../src/config.js";
import { ConnectionLimits } from "../src/server/connection-limits.js";
import { widenConnectionWindows, widenStreamWindows } from "../src/server/flow-control.js";

const echoAppend: handleBidiStreamingCall<AppendRequest, AppendResponse> = (call) => {
  let length = 0;
  call.on("data", (request: AppendRequest) => {
    const firstSeq = length;
    length += request.messages.length;
    call.write({ sessionId: request.sessionId, firstSeq, nextSeq: length, durableCount: 0 });
  });
  call.on("end", () => call.end());
};

// Warnings only (grpc-js internals changed: the windows could not be widened), on stderr.
const log = pino({ level: "warn" }, pino.destination(2));
const defaults = loadConfig([], {});
const server = new Server({
  "grpc.max_receive_message_length": defaults.maxRequestBytes,
  ...new ConnectionLimits(defaults, log).channelOptions(),
});
widenStreamWindows(server, log);
server.addService(SessionStoreService, { append: echoAppend });
server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  widenConnectionWindows(server, log);
  process.stdout.write(
    `${JSON.stringify({ msg: "echo listening", address: `127.0.0.1:${port}` })}\n`,
  );
});
process.once("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
