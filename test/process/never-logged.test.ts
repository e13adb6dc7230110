import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { afterEach, expect, it } from "vitest";
import {
  type AppendRequest,
  type AppendResponse,
  LoadRequest,
} from "../../gen/sessionstore/v1/session_store.js";
import { type ChildServer, startChildServer } from "../helpers/child-server.js";
import { startOtlpCollector } from "../helpers/otlp-collector.js";
import { collect, makeTempDir, unary } from "../helpers/test-server.js";
import { AUDIENCE, ISSUER, JwksFile, signingKey, token } from "../helpers/tokens.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** One Append stream with `metadata`; resolves to the status it ended with. */
function appendWith(
  server: ChildServer,
  metadata: Metadata,
  requests: Partial<AppendRequest>[],
): Promise<status> {
  return new Promise((resolve) => {
    const stream = server.client.append(metadata);
    stream.on("data", (_ack: AppendResponse) => {});
    stream.on("error", (error: ServiceError) => resolve(error.code));
    stream.on("end", () => resolve(status.OK));
    for (const request of requests) {
      stream.write({ sessionId: "private", messages: [], sync: false, labels: {}, ...request });
    }
    stream.end();
  });
}

it("never logs nor exports a message body or a token, at debug with grpc-js's tracing on, failed calls included", async () => {
  const marker = `body-marker-${randomBytes(8).toString("hex")}`;
  const secret = `token-${randomBytes(12).toString("hex")}`;
  const key = await signingKey();
  const jwks = await JwksFile.create([key]);
  const valid = await token(key, { tenant: "private-tenant" });
  const stranger = await token(await signingKey(), { tenant: "private-tenant" });
  const collector = await startOtlpCollector();
  cleanups.push(() => collector.close());
  const dataDir = await makeTempDir();
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const server = await startChildServer(
    [
      ...["--data-dir", dataDir, "--log-level", "debug", "--max-message-bytes", "512"],
      // Logged with the settings at start (the file backend does not use it).
      ...["--database-url", `postgresql://app:${secret}@127.0.0.1:1/sessions`],
      ...["--auth", "jwt", "--auth-jwks", jwks.path],
      ...["--auth-issuer", ISSUER, "--auth-audience", AUDIENCE],
    ],
    {
      GRPC_VERBOSITY: "DEBUG",
      GRPC_TRACE: "all",
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: "50",
    },
  );
  cleanups.push(async () => server.process.kill("SIGKILL"));
  let printed = "";
  server.process.stdout?.on("data", (chunk: Buffer) => {
    printed += chunk.toString();
  });
  server.process.stderr?.on("data", (chunk: Buffer) => {
    printed += chunk.toString();
  });

  const metadata = new Metadata();
  metadata.set("authorization", `Bearer ${valid}`);
  metadata.set("traceparent", `00-${randomBytes(16).toString("hex")}-${"1".repeat(16)}-01`);
  const body = `{"role":"user","content":"${marker}"}`;
  expect(await appendWith(server, metadata, [{ messages: [body, body], sync: true }])).toBe(
    status.OK,
  );
  // Requests refused for what they hold: each reason must be told without the text.
  const refused: [string, status][] = [
    [`{"content":${marker}}`, status.INVALID_ARGUMENT],
    [`{"${marker}":1,}`, status.INVALID_ARGUMENT],
    [`{"content":"${marker}`, status.INVALID_ARGUMENT],
    [`["${marker}"]`, status.INVALID_ARGUMENT],
    [String.raw`{"content":"${marker}\ud800"}`, status.INVALID_ARGUMENT],
    [`{"content":"${marker.repeat(40)}"}`, status.RESOURCE_EXHAUSTED],
  ];
  for (const [message, code] of refused) {
    expect(await appendWith(server, metadata, [{ messages: [message] }]), message).toBe(code);
  }
  expect(await appendWith(server, metadata, [{ messages: [body], expectedSeq: 7 }])).toBe(
    status.ABORTED,
  );
  // Tokens refused: one that is not a JWT, one signed by a key the server does not know.
  for (const refusedToken of [secret, stranger]) {
    const refusing = metadata.clone();
    refusing.set("authorization", `Bearer ${refusedToken}`);
    expect(await appendWith(server, refusing, [{ messages: [body] }])).toBe(status.UNAUTHENTICATED);
  }
  const pages = await collect(
    server.client.load(LoadRequest.fromPartial({ sessionId: "private" }), metadata),
  );
  expect(pages.flatMap((page) => page.messages)).toEqual([body, body]);
  await unary((request, callback) => server.client.loadMeta(request, metadata, callback), {
    sessionId: "private",
  });
  await unary((request, callback) => server.client.flush(request, metadata, callback), {
    sessionId: "",
  });

  server.client.close();
  server.process.kill("SIGTERM");
  expect(await server.exited).toBe(0);

  // What was printed is what an operator's log collector gets: it must have seen the calls,
  // failures and metadata (redacted), but no body and no token.
  const failures = server.logs.filter(
    (line) => line.msg === "rpc finished" && line.code === "INVALID_ARGUMENT",
  );
  expect(failures.length).toBeGreaterThanOrEqual(5);
  expect(failures.every((line) => typeof line.details === "string")).toBe(true);
  expect(printed).toContain("[redacted]");
  const secrets = [marker, secret, valid, stranger];
  for (const hidden of secrets) expect(printed).not.toContain(hidden);
  for (const line of server.logs) {
    for (const hidden of secrets) expect(JSON.stringify(line)).not.toContain(hidden);
  }
  // The spans exported hold none (OTLP's protobuf holds strings as UTF-8).
  expect(collector.received.length).toBeGreaterThan(0);
  for (const { body: exported } of collector.received) {
    for (const hidden of secrets) expect(exported.includes(hidden)).toBe(false);
  }
});
