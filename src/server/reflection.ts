import { readFileSync } from "node:fs";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import {
  type AnyDefinition,
  type EnumTypeDefinition,
  loadFileDescriptorSetFromBuffer,
  type MessageTypeDefinition,
  type PackageDefinition,
} from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { packageFile } from "./package-files.js";

/**
 * The FileDescriptorSets that buf compiles, in `npm run generate`, from our proto and from the
 * health proto that grpc-health-check serves (CI fails when they are not current).
 */
const DESCRIPTOR_SETS = ["gen/sessionstore.binpb", "gen/grpc-health.binpb"];

/**
 * Server reflection (v1 and v1alpha) describing SessionStore and Health with the compiler's own
 * descriptors.
 *
 * @grpc/reflection serves the `fileDescriptorProtos` of a proto-loader package definition, which
 * proto-loader makes by turning protobufjs's model of the protos back into descriptors, whether it
 * loaded .proto files or a descriptor set. That conversion is lossy: it names a map field's entry
 * message after the field (`Statuses`, where protoc says `StatusesEntry`), which protobuf-go, and
 * so grpcurl, rejects as an invalid map; it loses proto3 `optional` (a real oneof then) and the
 * comments. So the package definition gets the sets' own files, byte for byte, in their place.
 */
export function reflectionService(): ReflectionService {
  // Concatenated FileDescriptorSets are one set: `file`, repeated, is their only field.
  const descriptorSet = Buffer.concat(
    DESCRIPTOR_SETS.map((path) => readFileSync(packageFile(path))),
  );
  const files = fromBinary(FileDescriptorSetSchema, descriptorSet).file.map((file) =>
    Buffer.from(toBinary(FileDescriptorProtoSchema, file)),
  );
  return new ReflectionService(withFiles(loadFileDescriptorSetFromBuffer(descriptorSet), files));
}

/** `definition` with `files` as the descriptors of each of its messages and enums. */
function withFiles(definition: PackageDefinition, files: Buffer[]): PackageDefinition {
  return Object.fromEntries(
    Object.entries(definition).map(([name, entry]) => [
      name,
      isTypeDefinition(entry) ? { ...entry, fileDescriptorProtos: files } : entry,
    ]),
  );
}

/** Messages and enums carry the descriptors of their files; a service is a map of its methods. */
function isTypeDefinition(
  entry: AnyDefinition,
): entry is MessageTypeDefinition<object, object> | EnumTypeDefinition {
  return "format" in entry && "fileDescriptorProtos" in entry;
}
