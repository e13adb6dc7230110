import { connect } from "node:http2";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import {
  type ClientDuplexStream,
  credentials,
  type GrpcObject,
  loadPackageDefinition,
  type ServiceClientConstructor,
  status,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { healthClient } from "../helpers/health.js";
import { collect, startTestServer, type TestServer } from "../helpers/test-server.js";
import { expectStatus } from "./support.js";

let running: TestServer;

beforeAll(async () => {
  running = await startTestServer();
});

afterAll(async () => {
  await running.close();
});

describe("health", () => {
  let health: ReturnType<typeof healthClient>;

  beforeAll(() => {
    health = healthClient(running.server.address);
  });

  afterAll(() => health.close());

  const check = (service: string) => health.check(service);

  it.each(["", "sessionstore.v1.SessionStore"])("reports %j as SERVING", async (service) => {
    expect(await check(service)).toEqual({ status: "SERVING" });
  });

  it("answers NOT_FOUND for a service it does not serve", async () => {
    await expectStatus(check("no.such.Service"), status.NOT_FOUND);
  });
});

/** A ServerReflectionResponse, as proto-loader decodes it with keepCase and oneofs. */
interface ReflectionResponse {
  message_response: string;
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

/** The proto files @grpc/reflection ships: build/proto, next to its build/src entry point. */
const reflectionProtoRoot = join(
  dirname(createRequire(import.meta.url).resolve("@grpc/reflection")),
  "..",
  "proto",
);

/** Sends one request on a ServerReflectionInfo stream of `version` and returns the answer. */
async function reflect(version: "v1" | "v1alpha", request: object): Promise<ReflectionResponse> {
  const definition = loadSync(`grpc/reflection/${version}/reflection.proto`, {
    keepCase: true,
    oneofs: true,
    includeDirs: [reflectionProtoRoot],
  });
  const root = loadPackageDefinition(definition);
  const reflectionPackage = ((root.grpc as GrpcObject).reflection as GrpcObject)[
    version
  ] as GrpcObject;
  const Reflection = reflectionPackage.ServerReflection as ServiceClientConstructor;
  const client = new Reflection(running.server.address, credentials.createInsecure());
  try {
    const stream = (
      client as unknown as {
        ServerReflectionInfo(): ClientDuplexStream<object, ReflectionResponse>;
      }
    ).ServerReflectionInfo();
    const responses = collect(stream);
    stream.write(request);
    stream.end();
    const [response, ...more] = await responses;
    expect(more).toEqual([]);
    if (!response) throw new Error("no reflection response");
    return response;
  } finally {
    client.close();
  }
}

describe.each(["v1", "v1alpha"] as const)("server reflection %s", (version) => {
  it("lists the SessionStore and health services", async () => {
    const response = await reflect(version, { list_services: "" });
    const names = response.list_services_response?.service.map((service) => service.name);
    expect(names).toContain("sessionstore.v1.SessionStore");
    expect(names).toContain("grpc.health.v1.Health");
  });

  it("describes sessionstore.v1.SessionStore with all its RPCs", async () => {
    const response = await reflect(version, {
      file_containing_symbol: "sessionstore.v1.SessionStore",
    });
    const files = (response.file_descriptor_response?.file_descriptor_proto ?? []).map((bytes) =>
      fromBinary(FileDescriptorProtoSchema, bytes),
    );
    // The file as buf compiled it, under its own name.
    const file = files.find(
      (descriptor) => descriptor.name === "sessionstore/v1/session_store.proto",
    );
    const service = file?.service.find((descriptor) => descriptor.name === "SessionStore");
    expect(service?.method.map((method) => method.name).sort()).toEqual([
      "Append",
      "Delete",
      "Flush",
      "Fork",
      "List",
      "Load",
      "LoadMeta",
      "Rewind",
      "SetLabels",
      "Trim",
      "Watch",
    ]);
  });
});

describe("HTTP/2 flow control", () => {
  it("grants clients windows wide enough for several large requests in flight", async () => {
    const session = connect(`http://${running.server.address}`);
    // The server's shutdown may end this bare session with GOAWAY: not this test's concern.
    session.on("error", () => undefined);
    try {
      const streamWindow = await new Promise<number | undefined>((resolve) =>
        session.once("remoteSettings", (settings) => resolve(settings.initialWindowSize)),
      );
      expect(streamWindow).toBeGreaterThanOrEqual(1 << 20);
      await expect.poll(() => session.state.remoteWindowSize ?? 0).toBeGreaterThanOrEqual(8 << 20);
    } finally {
      session.destroy();
    }
  });
});
