import type { Requirement } from "../../labels.js";
import type { ListQuery } from "../storage.js";

/** A parameterized statement. */
export interface Statement {
  text: string;
  values: unknown[];
}

/**
 * One page of a listing as one SELECT over `sessionstore.sessions`. The prefix is a range of
 * session ids (ids are ASCII, compared as bytes); a selector's `=`/`in` requirements are jsonb
 * containment (`labels @> '{"user":"alice"}'`) and its `exists` ones `labels ? key`, both served
 * by the GIN index of labelled sessions; `notin` and `!exists` filter what those find. Ordered by
 * id, or by (updated_at_ms DESC, session_id), the order of its own index, after the cursor.
 */
export function listStatement(tenant: string, query: ListQuery): Statement {
  const values: unknown[] = [tenant];
  const param = (value: unknown) => {
    values.push(value);
    return `$${values.length}`;
  };
  const where = ["tenant = $1"];
  if (query.prefix !== "") {
    where.push(
      `session_id >= ${param(query.prefix)}`,
      `session_id < ${param(prefixEnd(query.prefix))}`,
    );
  }
  const predicates = query.selector.map((requirement) => labelPredicate(requirement, param));
  // Only labelled sessions are in the GIN index: say so when the selector implies it.
  if (
    query.selector.some((requirement) => requirement.op === "in" || requirement.op === "exists")
  ) {
    where.push("labels <> '{}'");
  }
  where.push(...predicates);
  const { after } = query;
  let order: string;
  if (query.order === "id") {
    if (after) where.push(`session_id > ${param(after.sessionId)}`);
    order = "session_id";
  } else {
    if (after) {
      const updated = param(after.updatedAtMs);
      where.push(
        `(updated_at_ms < ${updated} OR (updated_at_ms = ${updated} AND session_id > ${param(after.sessionId)}))`,
      );
    }
    order = "updated_at_ms DESC, session_id";
  }
  return {
    text: `SELECT * FROM sessionstore.sessions WHERE ${where.join(" AND ")} ORDER BY ${order} LIMIT ${param(query.limit)}`,
    values,
  };
}

/** The SQL condition of one requirement (values as parameters). */
function labelPredicate(requirement: Requirement, param: (value: unknown) => string): string {
  const { key } = requirement;
  switch (requirement.op) {
    case "exists":
      return `labels ? ${param(key)}`;
    case "!exists":
      return `NOT labels ? ${param(key)}`;
    case "in":
      return `(${requirement.values.map((value) => `labels @> ${param(JSON.stringify({ [key]: value }))}::jsonb`).join(" OR ")})`;
    case "notin":
      return `coalesce(labels ->> ${param(key)} <> ALL(${param(requirement.values)}::text[]), true)`;
  }
}

/** The first string after every string that starts with `prefix` (not ""). */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}
