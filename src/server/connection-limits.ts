import { setMaxListeners } from "node:events";
import { type Http2Session, constants as http2 } from "node:http2";
import type { Socket } from "node:net";
import {
  type ChannelOptions,
  type Server,
  ServerInterceptingCall,
  type ServerInterceptor,
  ServerListenerBuilder,
} from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { Code, SessionStoreError } from "../errors.js";
import { listeningHttp2Servers } from "./grpc-internals.js";
import { PingPolicy } from "./ping-policy.js";
import type { ConnectionClosing } from "./streaming-calls.js";

/** The settings of connections: how many, for how long, and how they ping. */
export type ConnectionSettings = Pick<
  Config,
  | "maxStreamsPerConnection"
  | "maxConnections"
  | "handshakeTimeoutMs"
  | "maxConnectionIdleMs"
  | "maxConnectionAgeMs"
  | "maxConnectionAgeGraceMs"
  | "keepaliveTimeMs"
  | "keepaliveTimeoutMs"
  | "keepaliveMinPingIntervalMs"
>;

/** GOAWAY debug data as gRPC servers send it; on the second, gRPC clients ping less often. */
const MAX_AGE = Buffer.from("max_age");
const TOO_MANY_PINGS = Buffer.from("too_many_pings");
/** The highest stream id: a first GOAWAY with it still admits the calls already on their way. */
const ANY_STREAM = 2 ** 31 - 1;
/** Connections refused at --max-connections are logged at most this often. */
const DROP_LOG_INTERVAL_MS = 10_000;

/** What one live connection knows: whether it is closing, and how its client pings. */
interface Connection {
  /** Aborts, with the error streams end with, when the connection is past its age. */
  closing: AbortController;
  pings: PingPolicy;
}

/**
 * The limits on client connections. grpc-js enforces some itself, given its options: streams per
 * connection (SETTINGS_MAX_CONCURRENT_STREAMS), the idle timeout and the keepalive pings it sends.
 * The rest is done here on the HTTP/2 sessions grpc-js creates: the cap on connections, the
 * handshake deadline, closing sockets whose client ignores GOAWAY, the connection age (grpc-js
 * has one, but at its end resets server-streaming calls with RST_STREAM NO_ERROR, which its own
 * client reports as INTERNAL, a status nobody retries), and refusing clients that ping too often.
 */
export class ConnectionLimits {
  /** Live connections by peer address, as grpc-js's `getPeer()` names a call's connection. */
  private readonly byPeer = new Map<string, Connection>();
  private droppedSinceLog = 0;
  private lastDropLog = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly settings: ConnectionSettings,
    private readonly log: Logger,
  ) {}

  /** The grpc-js server options for what grpc-js enforces itself; 0 settings leave theirs off. */
  channelOptions(): ChannelOptions {
    const { settings } = this;
    return {
      "grpc.max_concurrent_streams": settings.maxStreamsPerConnection,
      ...(settings.maxConnectionIdleMs > 0
        ? { "grpc.max_connection_idle_ms": settings.maxConnectionIdleMs }
        : {}),
      ...(settings.keepaliveTimeMs > 0
        ? {
            "grpc.keepalive_time_ms": settings.keepaliveTimeMs,
            "grpc.keepalive_timeout_ms": settings.keepaliveTimeoutMs,
          }
        : {}),
    };
  }

  /** The signal that a call's connection is closing, for StreamingCalls to stop the call. */
  readonly closing: ConnectionClosing = (call) => this.byPeer.get(call.getPeer())?.closing.signal;

  /**
   * An interceptor that tells each connection's ping policy when data flows (messages received,
   * headers, messages and status sent), as gRPC resets ping strikes on data frames.
   */
  readonly interceptor: ServerInterceptor = (_method, call) => {
    const pings = this.byPeer.get(call.getPeer())?.pings;
    if (pings === undefined) return new ServerInterceptingCall(call);
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next(
          new ServerListenerBuilder()
            .withOnReceiveMessage((message, nextMessage) => {
              pings.dataExchanged();
              nextMessage(message);
            })
            .build(),
        ),
      sendMetadata: (metadata, next) => {
        pings.dataExchanged();
        next(metadata);
      },
      sendMessage: (message, next) => {
        pings.dataExchanged();
        next(message);
      },
      sendStatus: (status, next) => {
        pings.dataExchanged();
        next(status);
      },
    });
  };

  /** Applies the limits to the connections of `server`: call after `bindAsync`. */
  watch(server: Server): void {
    const http2Servers = listeningHttp2Servers(
      server,
      this.log,
      "enforce --max-connections, --handshake-timeout-ms, --max-connection-age-ms and the ping rate",
    );
    for (const http2Server of http2Servers ?? []) {
      // Node's net.Server closes connections past this at once, before they cost more than a
      // moment's file descriptor; it counts per listening address.
      http2Server.maxConnections = this.settings.maxConnections;
      http2Server.on("drop", () => this.logDrop());
      http2Server.on("connection", (socket: Socket) => this.closeAbandonedSocket(socket));
      http2Server.on("session", (session: Http2Session) => this.track(session));
    }
  }

  private track(session: Http2Session): void {
    const { settings, log } = this;
    const peer = peerName(session.socket.remoteAddress, session.socket.remotePort);
    const connection: Connection = {
      closing: new AbortController(),
      pings: new PingPolicy(settings.keepaliveMinPingIntervalMs),
    };
    // Each stream on the connection listens, up to --max-streams-per-connection: not a leak.
    setMaxListeners(0, connection.closing.signal);
    if (peer !== "unknown") this.byPeer.set(peer, connection);
    // grpc-js's idle timeout covers a connection that never completes the handshake, but only with
    // a graceful close that waits for the client (closeAbandonedSocket), and it is minutes long.
    const handshake = setTimeout(() => {
      log.debug({ peer }, "closing a connection: no HTTP/2 handshake in --handshake-timeout-ms");
      session.destroy();
    }, settings.handshakeTimeoutMs).unref();
    session.once("remoteSettings", () => clearTimeout(handshake));
    const timers = [handshake];
    if (settings.maxConnectionAgeMs > 0) {
      timers.push(
        setTimeout(() => {
          const grace = this.recycle(session, connection, peer);
          if (grace) timers.push(grace);
        }, withJitter(settings.maxConnectionAgeMs)).unref(),
      );
    }
    session.on("ping", () => {
      if (connection.pings.pingReceived(Date.now())) this.refusePings(session, peer);
    });
    session.once("close", () => {
      for (const timer of timers) clearTimeout(timer);
      if (this.byPeer.get(peer) === connection) this.byPeer.delete(peer);
    });
  }

  /**
   * Moves a connection's clients to a new one (behind a load balancer, maybe to another replica):
   * GOAWAY, then our streams on it end with UNAVAILABLE after answering what they took, as at
   * shutdown, and once the calls are done (or the grace period is over) the connection closes.
   * Returns the grace timer.
   */
  private recycle(
    session: Http2Session,
    connection: Connection,
    peer: string,
  ): NodeJS.Timeout | undefined {
    if (session.closed || session.destroyed) return undefined;
    this.log.debug({ peer }, "closing a connection past --max-connection-age-ms (GOAWAY)");
    // GOAWAY goes out before any stream's status, so the client's retry takes a new connection.
    session.goaway(http2.NGHTTP2_NO_ERROR, ANY_STREAM, MAX_AGE);
    connection.closing.abort(connectionPastAge());
    session.close();
    return setTimeout(() => session.destroy(), this.settings.maxConnectionAgeGraceMs).unref();
  }

  /** Per gRPC's keepalive spec: GOAWAY ENHANCE_YOUR_CALM "too_many_pings", and close at once. */
  private refusePings(session: Http2Session, peer: string): void {
    if (session.destroyed) return;
    this.log.warn(
      { peer, minPingIntervalMs: this.settings.keepaliveMinPingIntervalMs },
      "closing a connection whose client pings more often than --keepalive-min-ping-interval-ms",
    );
    session.goaway(http2.NGHTTP2_ENHANCE_YOUR_CALM, 0, TOO_MANY_PINGS);
    session.destroy();
  }

  /**
   * A graceful close (idle, max age, shutdown) ends the server's side of the socket after GOAWAY,
   * but Node releases the socket only once the client ends its side too, which a client that
   * ignores GOAWAY never does: its file descriptor would stay taken. Destroy such sockets.
   */
  private closeAbandonedSocket(socket: Socket): void {
    socket.once("finish", () => {
      const deadline = setTimeout(() => socket.destroy(), this.settings.handshakeTimeoutMs);
      deadline.unref();
      socket.once("close", () => clearTimeout(deadline));
    });
  }

  /** Logs refused connections: the first at once, then at most one line per interval. */
  private logDrop(): void {
    this.droppedSinceLog++;
    const now = Date.now();
    if (now - this.lastDropLog < DROP_LOG_INTERVAL_MS) return;
    this.log.warn(
      { refused: this.droppedSinceLog, maxConnections: this.settings.maxConnections },
      "refusing connections: --max-connections are open",
    );
    this.droppedSinceLog = 0;
    this.lastDropLog = now;
  }
}

/** A connection's peer, formatted as grpc-js's `getPeer()` formats it. */
function peerName(address: string | undefined, port: number | undefined): string {
  if (!address) return "unknown";
  return port ? `${address}:${port}` : address;
}

/** ±10 %, as gRPC servers spread connection ages so that clients do not reconnect together. */
function withJitter(ms: number): number {
  return Math.min(2 ** 31 - 1, Math.round(ms * (0.9 + Math.random() * 0.2)));
}

function connectionPastAge(): SessionStoreError {
  return new SessionStoreError(
    Code.Unavailable,
    "this connection reached its maximum age (--max-connection-age-ms) and is closing; retry on " +
      "a new connection: resend what was not acknowledged, watch again from the next seq",
  );
}
