import type { Server, ServerCredentials } from "@grpc/grpc-js";

/**
 * Binds `server` to `address` (host:port) with `credentials`, and resolves to the port bound. A failure
 * names the address and, for the common case of a port in use, what to do: grpc-js reports every
 * failure as "No address added out of total N resolved errors: [...]", with the system's reason
 * (EADDRINUSE, ...) only inside that text.
 */
export function bind(
  server: Server,
  address: string,
  credentials: ServerCredentials,
): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, credentials, (error, port) =>
      error ? reject(bindFailure(address, error)) : resolve(port),
    ),
  );
}

function bindFailure(address: string, error: Error): Error {
  const reason = error.message.includes("EADDRINUSE")
    ? "the address is already in use (is another server running?); stop that process or " +
      "pass another --listen (port 0 picks a free one)"
    : (/errors: \[(.*)\]$/.exec(error.message)?.[1] ?? error.message);
  return new Error(`cannot listen on ${address}: ${reason}`, { cause: error });
}
