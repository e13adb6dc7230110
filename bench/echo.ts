import { fileURLToPath } from "node:url";
import { credentials } from "@grpc/grpc-js";
import { SessionStoreClient } from "../gen/sessionstore/v1/session_store.js";
import { type ServerProcess, spawnServer } from "./child-process.js";

const ECHO_SERVER = fileURLToPath(new URL("./echo-server.js", import.meta.url));

export interface EchoProcess extends ServerProcess {
  client: SessionStoreClient;
  close(): Promise<void>;
}

/** Starts the bare grpc-js echo baseline (echo-server.ts) as a child process. */
export async function startEcho(): Promise<EchoProcess> {
  const server = await spawnServer([process.execPath, ECHO_SERVER], "echo listening");
  const client = new SessionStoreClient(server.address, credentials.createInsecure());
  return {
    ...server,
    client,
    async close() {
      client.close();
      await server.stop();
    },
  };
}
