import { MemoryStorage } from "../../src/store/memory/memory-storage.js";
import { describeStorageConformance } from "./conformance.js";

describeStorageConformance("MemoryStorage", async () => ({
  storage: new MemoryStorage(),
  volatile: true,
  cleanup: async () => {},
}));
