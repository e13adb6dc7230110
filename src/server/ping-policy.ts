/**
 * Pings too early that a connection may send before it is refused: gRPC's default
 * (GRPC_ARG_HTTP2_MAX_PING_STRIKES), so the third early ping in a row closes it.
 */
const MAX_PING_STRIKES = 2;

/**
 * gRPC's server-side keepalive enforcement (grpc/doc/keepalive.md; chttp2's ping_abuse_policy) for
 * one connection. A ping that arrives less than `minIntervalMs` after the previous one, with no
 * data between them, is a strike; past MAX_PING_STRIKES the client pings too often. Data either
 * way forgives every strike: clients ping for bandwidth estimates while data flows, and that is
 * not abuse. Unlike gRPC's default (GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS off, which allows one
 * ping in two hours on a connection without calls), a connection without calls may ping at the
 * same interval: --max-connection-idle-ms already closes those, and refusing them would make
 * clients that keep idle connections warm double their keepalive time and log an error instead.
 */
export class PingPolicy {
  private lastPingAt: number | undefined;
  private strikes = 0;

  /** `minIntervalMs` 0 allows any rate. */
  constructor(private readonly minIntervalMs: number) {}

  /** Data was sent or received on the connection: the pings before it count no more. */
  dataExchanged(): void {
    this.lastPingAt = undefined;
    this.strikes = 0;
  }

  /** Records a ping received at `now` (ms); true once the connection has pinged too often. */
  pingReceived(now: number): boolean {
    if (this.lastPingAt !== undefined && now - this.lastPingAt < this.minIntervalMs) {
      this.strikes++;
    }
    this.lastPingAt = now;
    return this.strikes > MAX_PING_STRIKES;
  }
}
