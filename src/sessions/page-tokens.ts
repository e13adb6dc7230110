import { invalidArgument } from "../errors.js";
import type { ListCursor, ListOrder } from "../store/storage.js";

/** What a page token belongs to: a token is good only for the listing that gave it. */
export interface Listing {
  prefix: string;
  labelSelector: string;
  order: ListOrder;
}

/**
 * A page token: the last session of the page (its id, and its update time for the order by
 * update) and the listing, so that a token passed with other options is refused, not misread.
 */
export function encodePageToken(last: ListCursor, listing: Listing): string {
  const position = listing.order === "id" ? [last.sessionId] : [last.sessionId, last.updatedAtMs];
  return Buffer.from(JSON.stringify([listing, ...position]), "utf8").toString("base64url");
}

/** The cursor a page token names, or INVALID_ARGUMENT for a token not made for `listing`. */
export function decodePageToken(token: string, listing: Listing): ListCursor | undefined {
  if (token === "") return undefined;
  const refused = () =>
    invalidArgument(
      "page_token is not one this server returned for this listing; pass next_page_token " +
        "unchanged, with the same prefix, label_selector and order",
    );
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw refused();
  }
  if (!Array.isArray(decoded)) throw refused();
  const [given, sessionId, updatedAtMs = 0] = decoded as [unknown, unknown, unknown];
  if (
    JSON.stringify(given) !== JSON.stringify(listing) ||
    typeof sessionId !== "string" ||
    typeof updatedAtMs !== "number" ||
    encodePageToken({ sessionId, updatedAtMs }, listing) !== token
  ) {
    throw refused();
  }
  return { sessionId, updatedAtMs };
}
