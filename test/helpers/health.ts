import {
  type Client,
  credentials,
  makeGenericClientConstructor,
  type ServiceError,
} from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { unary } from "./test-server.js";

interface HealthCheckRequest {
  service: string;
}
interface HealthCheckResponse {
  status: string;
}
interface HealthClient extends Client {
  check(
    request: HealthCheckRequest,
    callback: (error: ServiceError | null, response: HealthCheckResponse) => void,
  ): unknown;
}

/** A grpc.health.v1.Health client, built from the service definition the server serves. */
export function healthClient(address: string): {
  check(service?: string): Promise<HealthCheckResponse>;
  close(): void;
} {
  const Health = makeGenericClientConstructor(healthService, "grpc.health.v1.Health");
  const client = new Health(address, credentials.createInsecure()) as unknown as HealthClient;
  return {
    check: (service = "") =>
      unary<HealthCheckRequest, HealthCheckResponse>(
        (request, callback) => client.check(request, callback),
        { service },
      ),
    close: () => client.close(),
  };
}
