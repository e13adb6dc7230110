import { ConfigError } from "../config.js";

/**
 * Whether the standard OpenTelemetry variables ask for traces: OTEL_TRACES_EXPORTER=otlp, or an
 * OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), unless
 * OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. It reads only the environment, so a
 * server without them loads none of OpenTelemetry. What this server cannot do (another exporter
 * or protocol) is a ConfigError at start, rather than spans silently lost.
 */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? "")
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
  if (exporters.some((name) => name !== "otlp" && name !== "none")) {
    throw new ConfigError(
      `OTEL_TRACES_EXPORTER=${env.OTEL_TRACES_EXPORTER}: this server exports spans with otlp only (or none)`,
    );
  }
  if (exporters.includes("none")) return false;
  const requested =
    exporters.includes("otlp") ||
    Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT) ||
    Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  if (!requested) return false;
  const protocol =
    env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL || "http/protobuf";
  if (protocol !== "http/protobuf") {
    throw new ConfigError(
      `OTLP protocol ${protocol}: this server exports spans with http/protobuf only ` +
        "(a collector's port 4318); unset OTEL_EXPORTER_OTLP_PROTOCOL or set it to http/protobuf",
    );
  }
  return true;
}
