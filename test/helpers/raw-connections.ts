import { readdirSync } from "node:fs";
import { connect, type Socket } from "node:net";

/** The first part of HTTP/2's client connection preface (RFC 9113 §3.4). */
export const HTTP2_MAGIC = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** The rest: a SETTINGS frame, here an empty one. With it, the client's handshake is done. */
export const EMPTY_SETTINGS_FRAME = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

/**
 * Opens `count` TCP connections to `address` (host:port) that send `bytes`, then nothing, and
 * never close their side, not even when the server closes its own: a port scanner, a stalled
 * client, or one that ignores GOAWAY. Resolves once all are connected; `destroy` closes them.
 */
export async function openSilentConnections(
  address: string,
  count: number,
  bytes: Buffer = Buffer.alloc(0),
): Promise<{ sockets: Socket[]; destroy(): void }> {
  const separator = address.lastIndexOf(":");
  const host = address.slice(0, separator);
  const port = Number(address.slice(separator + 1));
  const sockets = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const socket = connect({ host, port, allowHalfOpen: true }, () => {
            if (bytes.length > 0) socket.write(bytes);
            resolve(socket);
          });
          // A server that refuses or resets the connection is what some tests expect.
          socket.on("error", () => undefined);
          socket.once("error", reject);
        }),
    ),
  );
  return {
    sockets,
    destroy: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** How many file descriptors process `pid` has open (Linux: /proc/<pid>/fd). */
export function openFileDescriptors(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}
