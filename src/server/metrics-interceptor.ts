import { performance } from "node:perf_hooks";
import {
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  ServerListenerBuilder,
  status,
} from "@grpc/grpc-js";
import type { GrpcType, RpcMetrics } from "../metrics/rpc-metrics.js";

/** A method's grpc_type label, from how it streams. */
export function grpcTypeOf(method: { requestStream: boolean; responseStream: boolean }): GrpcType {
  if (method.requestStream) return method.responseStream ? "bidi_stream" : "client_stream";
  return method.responseStream ? "server_stream" : "unary";
}

/**
 * Counts every call as go-grpc-prometheus does: started as it arrives, each message received
 * and sent, and handled, with its status code and duration, as it ends: by the status the
 * server sends, or, for a call that ends without one (the client cancelled, or its deadline
 * passed), as Canceled or DeadlineExceeded. Per message it adds 1 to a number.
 */
export function metricsInterceptor(metrics: RpcMetrics): ServerInterceptor {
  return (method, call) => {
    const counts = metrics.method(method.path, grpcTypeOf(method));
    counts.started++;
    const started = performance.now();
    let finished = false;
    const finish = (code: number) => {
      if (finished) return;
      finished = true;
      counts.finished(code, (performance.now() - started) / 1000);
    };
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next(
          new ServerListenerBuilder()
            .withOnReceiveMessage((message, nextMessage) => {
              counts.received++;
              nextMessage(message);
            })
            .withOnCancel(() =>
              finish(deadlinePassed(call) ? status.DEADLINE_EXCEEDED : status.CANCELLED),
            )
            .build(),
        ),
      sendMessage: (message, next) => {
        counts.sent++;
        next(message);
      },
      sendStatus: (callStatus, next) => {
        finish(callStatus.code ?? status.OK);
        next(callStatus);
      },
    });
  };
}

function deadlinePassed(call: ServerInterceptingCallInterface): boolean {
  const deadline = call.getDeadline();
  return (deadline instanceof Date ? deadline.getTime() : deadline) <= Date.now();
}
