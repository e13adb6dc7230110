import { MemoryStorage } from "../../src/store/memory/memory-storage.js";
import { rootTenantOf } from "../helpers/root-tenant.js";
import { describeStorageConformance } from "./conformance.js";

describeStorageConformance("MemoryStorage", async () => ({
  storage: rootTenantOf(new MemoryStorage()),
  volatile: true,
  cleanup: async () => {},
}));
