import { fileURLToPath } from "node:url";
import { type ServerProcess, spawnServer } from "./child-process.js";

const ECHO_SERVER = fileURLToPath(new URL("./echo-server.js", import.meta.url));

/** Starts the bare grpc-js echo baseline (echo-server.ts) as a child process. */
export function startEcho(): Promise<ServerProcess> {
  return spawnServer([process.execPath, ECHO_SERVER], "echo listening");
}
