import {
  type Metadata,
  ServerInterceptingCall,
  type ServerInterceptor,
  ServerListenerBuilder,
  status,
} from "@grpc/grpc-js";
import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import {
  SEMATTRS_RPC_GRPC_STATUS_CODE,
  SEMATTRS_RPC_METHOD,
  SEMATTRS_RPC_SERVICE,
  SEMATTRS_RPC_SYSTEM,
} from "@opentelemetry/semantic-conventions";

/** Reads a propagator's fields (`traceparent`, `tracestate`, `baggage`) from call metadata. */
const METADATA: TextMapGetter<Metadata> = {
  keys: (metadata) => Object.keys(metadata.getMap()),
  get: (metadata, key) => {
    const values = metadata.get(key).filter((value): value is string => typeof value === "string");
    return values.length > 1 ? values : values[0];
  },
};

/**
 * A SERVER span per call, named `package.Service/Method`, continuing the trace of the client's
 * `traceparent` (and `tracestate`) metadata, with rpc.system, rpc.service, rpc.method and, as
 * it ends, rpc.grpc.status_code; a call that does not end OK has an error status, its message
 * the status details (which never hold a message body). The handler runs in the span's context,
 * so what it schedules (storage writes, log lines) is in it too. Only installed when tracing is
 * on: a server without it pays nothing.
 */
export function tracingInterceptor(tracer: Tracer): ServerInterceptor {
  return (method, call) => {
    const slash = method.path.lastIndexOf("/");
    let span: Span | undefined;
    let active: Context = ROOT_CONTEXT;
    const inSpan = <T>(deliver: () => T): T => context.with(active, deliver);
    const end = (code: number, details: string | undefined) => {
      if (!span) return;
      span.setAttribute(SEMATTRS_RPC_GRPC_STATUS_CODE, code);
      if (code !== status.OK) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: details || status[code] });
      }
      span.end();
      span = undefined;
    };
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next(
          new ServerListenerBuilder()
            .withOnReceiveMetadata((metadata, nextMetadata) => {
              const parent = propagation.extract(ROOT_CONTEXT, metadata, METADATA);
              span = tracer.startSpan(
                method.path.slice(1),
                {
                  kind: SpanKind.SERVER,
                  attributes: {
                    [SEMATTRS_RPC_SYSTEM]: "grpc",
                    [SEMATTRS_RPC_SERVICE]: method.path.slice(1, slash),
                    [SEMATTRS_RPC_METHOD]: method.path.slice(slash + 1),
                  },
                },
                parent,
              );
              active = trace.setSpan(parent, span);
              inSpan(() => nextMetadata(metadata));
            })
            .withOnReceiveMessage((message, nextMessage) => inSpan(() => nextMessage(message)))
            .withOnReceiveHalfClose((nextHalfClose) => inSpan(nextHalfClose))
            .withOnCancel(() => end(status.CANCELLED, "cancelled by the client"))
            .build(),
        ),
      sendStatus: (callStatus, next) => {
        end(callStatus.code ?? status.OK, callStatus.details);
        next(callStatus);
      },
    });
  };
}
