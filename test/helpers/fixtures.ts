import { fileURLToPath } from "node:url";

/**
 * motosan's sample session files: ../shared/fixtures/motosan beside the repository, found from
 * this file rather than by an absolute path, which differs between machines and checkouts.
 */
export const MOTOSAN_FIXTURES = fileURLToPath(
  new URL("../../../shared/fixtures/motosan", import.meta.url),
);
