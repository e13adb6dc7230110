import { Server, ServerCredentials } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { SessionManager } from "../sessions/session-manager.js";
import { JsonlFileStorage } from "../store/jsonl/jsonl-storage.js";
import { MemoryStorage } from "../store/memory-storage.js";
import type { SessionStorage } from "../store/storage.js";
import { ConnectionLimits } from "./connection-limits.js";
import { widenConnectionWindows, widenStreamWindows } from "./flow-control.js";
import { loggingInterceptor } from "./logging-interceptor.js";
import { sessionStoreProtoPath } from "./proto-files.js";
import { strictSessionStoreService } from "./request-decoding.js";
import { sessionStoreHandlers } from "./session-store-service.js";
import { StreamingCalls } from "./streaming-calls.js";

export const SERVICE_NAME = "sessionstore.v1.SessionStore";

export interface RunningServer {
  /** The address bound, host:port (the port chosen when the config asked for 0). */
  address: string;
  port: number;
  /**
   * Graceful shutdown: health goes NOT_SERVING, new calls are refused, streams end with
   * UNAVAILABLE after answering what they took, every buffer is written and fsynced. Calls still
   * running after the configured timeout are cancelled.
   */
  shutdown(): Promise<void>;
}

/** Opens the storage and serves SessionStore, health and reflection on `config.listen`. */
export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  const storage = createStorage(config, log);
  await storage.open();
  const sessions = new SessionManager(storage, config, log);
  const connections = new ConnectionLimits(config, log);
  const streams = new StreamingCalls(
    { append: config.maxAppendStreams, read: config.maxReadStreams },
    connections.closing,
    log,
  );
  const health = new HealthImplementation({ "": "SERVING", [SERVICE_NAME]: "SERVING" });

  const server = new Server({
    interceptors: [loggingInterceptor(log), connections.interceptor],
    "grpc.max_receive_message_length": config.maxRequestBytes,
    ...connections.channelOptions(),
  });
  widenStreamWindows(server, log);
  server.addService(strictSessionStoreService, sessionStoreHandlers(sessions, streams, log));
  health.addToServer(server);
  new ReflectionService(
    loadSync([sessionStoreProtoPath(), healthProtoPath], { keepCase: true }),
  ).addToServer(server);

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(config.listen, ServerCredentials.createInsecure(), (error, boundPort) =>
        error ? reject(error) : resolve(boundPort),
      ),
    );
  } catch (error) {
    await storage.close();
    throw error;
  }
  widenConnectionWindows(server, log);
  connections.watch(server);
  const address = `${config.listen.slice(0, config.listen.lastIndexOf(":"))}:${port}`;
  log.info({ address, settings: config }, "sessionstore listening");

  let shutdown: Promise<void> | undefined;
  return {
    address,
    port,
    shutdown() {
      shutdown ??= shutDown({
        server,
        health,
        streams,
        sessions,
        log,
        timeoutMs: config.shutdownTimeoutMs,
      });
      return shutdown;
    },
  };
}

function createStorage(config: Config, log: Logger): SessionStorage {
  switch (config.storage) {
    case "memory":
      return new MemoryStorage();
    case "jsonl":
      return new JsonlFileStorage({
        directory: config.dataDir,
        maxOpenFiles: config.maxOpenFiles,
        log,
      });
  }
}

async function shutDown(parts: {
  server: Server;
  health: HealthImplementation;
  streams: StreamingCalls;
  sessions: SessionManager;
  log: Logger;
  timeoutMs: number;
}): Promise<void> {
  const { server, health, streams, sessions, log, timeoutMs } = parts;
  const started = Date.now();
  health.setStatus("", "NOT_SERVING");
  health.setStatus(SERVICE_NAME, "NOT_SERVING");
  server.tryShutdown(() => undefined); // refuses new calls; running ones go on
  const deadline = new Promise<"timeout">((resolve) =>
    setTimeout(() => resolve("timeout"), timeoutMs).unref(),
  );
  if ((await Promise.race([streams.stopAll(), deadline])) === "timeout") {
    log.warn({ timeoutMs }, "streams did not end in time; cancelling them");
  }
  await sessions.close();
  // What still runs cannot change stored data any more (unary reads, health watches): cancel it
  // rather than let a watcher hold the process.
  server.forceShutdown();
  log.info(
    { ms: Date.now() - started },
    "sessionstore stopped; every buffer is written and fsynced",
  );
}
