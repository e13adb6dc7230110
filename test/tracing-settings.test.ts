import { describe, expect, it } from "vitest";
import { ConfigError } from "../src/config.js";
import { tracingRequested } from "../src/tracing/tracing-settings.js";

describe("tracingRequested", () => {
  it.each([
    [{}, false],
    [{ OTEL_TRACES_EXPORTER: "otlp" }, true],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" }, true],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:4318/v1/traces" }, true],
    [{ OTEL_TRACES_EXPORTER: "otlp", OTEL_SDK_DISABLED: "true" }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_TRACES_EXPORTER: "none" }, false],
    [{ OTEL_TRACES_EXPORTER: "otlp", OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" }, true],
  ])("reads %j as %s", (env, requested) => {
    expect(tracingRequested(env)).toBe(requested);
  });

  it.each([
    [{ OTEL_TRACES_EXPORTER: "zipkin" }, "otlp only"],
    [{ OTEL_TRACES_EXPORTER: "otlp", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }, "http/protobuf only"],
    [
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318",
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
      },
      "http/protobuf only",
    ],
  ])("refuses %j at start rather than lose the spans", (env, text) => {
    expect(() => tracingRequested(env)).toThrow(ConfigError);
    expect(() => tracingRequested(env)).toThrow(text);
  });
});
