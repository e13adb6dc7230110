import { Server, type ServerInterceptor } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import type { Logger } from "pino";
import type { Access } from "../auth/access.js";
import { createAccess } from "../auth/create-access.js";
import { type Config, loggableSettings } from "../config.js";
import type { SessionService } from "../sessions/session-service.js";
import { bind } from "./bind.js";
import { ConnectionLimits } from "./connection-limits.js";
import { widenConnectionWindows, widenStreamWindows } from "./flow-control.js";
import { type ServedMethod, servedMethods } from "./grpc-internals.js";
import { loggingInterceptor } from "./logging-interceptor.js";
import { reflectionService } from "./reflection.js";
import { strictSessionStoreService } from "./request-decoding.js";
import { sessionStoreHandlers } from "./session-store-service.js";
import { StreamingCalls } from "./streaming-calls.js";
import { type ServerTransport, serverTransport } from "./tls.js";

export const SERVICE_NAME = "sessionstore.v1.SessionStore";

/** How long shutdown waits, after the streams ended, for their statuses to reach the clients. */
const STATUS_GRACE_MS = 250;

export interface RunningServer {
  /** The address bound, host:port (the port chosen when the config asked for 0). */
  address: string;
  port: number;
  /** Every method served, of every service (empty if grpc-js no longer tells). */
  methods: readonly ServedMethod[];
  /**
   * Graceful shutdown: health goes NOT_SERVING, new calls are refused, streams end with
   * UNAVAILABLE after answering what they took, every buffer is written and fsynced. Calls still
   * running after the configured timeout are cancelled.
   */
  shutdown(): Promise<void>;
}

/**
 * Serves SessionStore over `sessions` (whose storage is open), with health and reflection, on
 * `config.listen`. Shutdown closes the sessions (and so the storage). `observers` (metrics,
 * traces) intercept every call of every service, before the server's own interceptors.
 */
export async function startServer(
  sessions: SessionService,
  config: Config,
  log: Logger,
  observers: readonly ServerInterceptor[] = [],
): Promise<RunningServer> {
  const connections = new ConnectionLimits(config, log);
  const streams = new StreamingCalls(
    { append: config.maxAppendStreams, read: config.maxReadStreams },
    connections.closing,
    log,
  );
  const health = new HealthImplementation({ "": "SERVING", [SERVICE_NAME]: "SERVING" });
  // NOT_SERVING while the storage cannot serve (its database down), so a balancer sends calls
  // elsewhere; SERVING again when it can, unless the server is shutting down by then.
  let stopping = false;
  const stopWatchingHealth = sessions.watchHealth((serving) => {
    if (stopping) return;
    const status = serving ? "SERVING" : "NOT_SERVING";
    health.setStatus("", status);
    health.setStatus(SERVICE_NAME, status);
    log.info({ status }, "health changed with the storage's");
  });

  let transport: ServerTransport;
  let access: Access;
  try {
    transport = await serverTransport(config, log);
    access = await createAccess(config, log);
  } catch (error) {
    await sessions.close();
    throw error;
  }
  const server = new Server({
    // grpc-js passes a call's events through the first interceptor first, and its status last.
    interceptors: [...observers, loggingInterceptor(log), connections.interceptor],
    "grpc.max_receive_message_length": config.maxRequestBytes,
    ...connections.channelOptions(),
  });
  widenStreamWindows(server, log);
  server.addService(
    strictSessionStoreService,
    sessionStoreHandlers(sessions, streams, access, log),
  );
  health.addToServer(server);
  reflectionService().addToServer(server);

  let port: number;
  try {
    port = await bind(server, config.listen, transport.credentials);
  } catch (error) {
    transport.close();
    access.close?.();
    await sessions.close(); // releases the storage (the data directory's lock)
    throw error;
  }
  widenConnectionWindows(server, log);
  connections.watch(server);
  const address = `${config.listen.slice(0, config.listen.lastIndexOf(":"))}:${port}`;
  log.info({ address, settings: loggableSettings(config) }, "sessionstore listening");

  let shutdown: Promise<void> | undefined;
  return {
    address,
    port,
    methods: servedMethods(server, log, "list the methods served") ?? [],
    shutdown() {
      stopping = true;
      stopWatchingHealth();
      transport.close();
      access.close?.();
      shutdown ??= shutDown({
        server,
        health,
        streams,
        sessions,
        log,
        timeoutMs: config.shutdownTimeoutMs,
        drainDelayMs: config.drainDelayMs,
      });
      return shutdown;
    },
  };
}

async function shutDown(parts: {
  server: Server;
  health: HealthImplementation;
  streams: StreamingCalls;
  sessions: SessionService;
  log: Logger;
  timeoutMs: number;
  drainDelayMs: number;
}): Promise<void> {
  const { server, health, streams, sessions, log, timeoutMs, drainDelayMs } = parts;
  const started = Date.now();
  health.setStatus("", "NOT_SERVING");
  health.setStatus(SERVICE_NAME, "NOT_SERVING");
  if (drainDelayMs > 0) {
    // Balancers and meshes probe health: while they notice, calls they still send are served.
    log.info({ drainDelayMs }, "draining: NOT_SERVING, still serving until the delay ends");
    await new Promise((resolve) => setTimeout(resolve, drainDelayMs));
  }
  // Refuses new calls; running ones go on. It completes once every call has ended and its status
  // reached the client.
  const drained = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  const deadline = new Promise<"timeout">((resolve) =>
    setTimeout(() => resolve("timeout"), timeoutMs).unref(),
  );
  if ((await Promise.race([streams.stopAll(), deadline])) === "timeout") {
    log.warn({ timeoutMs }, "streams did not end in time; cancelling them");
  }
  await sessions.close();
  // The streams ended with their statuses: give grpc-js a moment to send them. What still runs
  // after that cannot change stored data any more (unary reads, health watches): cancel it
  // rather than let a watcher hold the process.
  await Promise.race([
    drained,
    new Promise((resolve) => setTimeout(resolve, STATUS_GRACE_MS).unref()),
  ]);
  server.forceShutdown();
  log.info({ ms: Date.now() - started }, "sessionstore stopped");
}
