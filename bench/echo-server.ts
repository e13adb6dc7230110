/**
 * The bare gRPC baseline: a grpc-js server whose Append answers each request at once with a
 * small AppendResponse, storing nothing. It uses the same generated service definition (so the
 * same encoding and the same client code path), so comparing the real server with it isolates
 * what the server itself costs. Run as a child process by the bench; prints one JSON line with
 * the address once it listens.
 */
import { type handleBidiStreamingCall, Server, ServerCredentials } from "@grpc/grpc-js";
import {
  type AppendRequest,
  type AppendResponse,
  SessionStoreService,
} from "../gen/sessionstore/v1/session_store.js";

const echoAppend: handleBidiStreamingCall<AppendRequest, AppendResponse> = (call) => {
  let length = 0;
  call.on("data", (request: AppendRequest) => {
    const firstSeq = length;
    length += request.messages.length;
    call.write({ sessionId: request.sessionId, firstSeq, nextSeq: length, durableCount: 0 });
  });
  call.on("end", () => call.end());
};

const server = new Server();
server.addService(SessionStoreService, { append: echoAppend });
server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  process.stdout.write(
    `${JSON.stringify({ msg: "echo listening", address: `127.0.0.1:${port}` })}\n`,
  );
});
process.once("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
