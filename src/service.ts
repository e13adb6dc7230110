import type { Config } from "./config.js";
import type { Logger } from "./logger.js";
import { type RunningServer, startServer } from "./server/server.js";
import { SessionService } from "./sessions/session-service.js";
import { createStorage } from "./store/create-storage.js";

/**
 * The whole service as `sessionstore serve` runs it: the configured storage backend, opened,
 * the session semantics over it, and the gRPC server over those.
 */
export async function startService(config: Config, log: Logger): Promise<RunningServer> {
  const storage = await createStorage(config, log);
  await storage.open();
  const sessions = new SessionService(storage, config, log);
  return startServer(sessions, config, log);
}
