import { invalidArgument } from "./errors.js";

/**
 * Session labels, as Kubernetes has them: keys `[prefix/]name`, a DNS-subdomain prefix of at
 * most 253 characters and a name of at most 63 (alphanumerics, `-`, `_`, `.`, alphanumeric at
 * both ends); values empty or like a name. A session has at most MAX_LABELS of them, of at most
 * MAX_LABEL_BYTES in all, so that a session's labels stay small beside its messages.
 */
export type Labels = Readonly<Record<string, string>>;

export const MAX_LABELS = 64;
export const MAX_LABEL_BYTES = 8192;
/** A selector names at most every label of a session, with room for operators. */
export const MAX_SELECTOR_LENGTH = 16384;

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export const LABEL_RULE =
  "a label key is [prefix/]name: name 1-63 characters of [A-Za-z0-9._-], alphanumeric at both ends; " +
  "prefix a DNS subdomain of at most 253 characters; a value is empty or like a name";

export function isLabelKey(key: string): boolean {
  const slash = key.indexOf("/");
  if (slash === -1) return NAME.test(key);
  const prefix = key.slice(0, slash);
  return (
    prefix.length <= 253 &&
    prefix.split(".").every((part) => DNS_LABEL.test(part)) &&
    NAME.test(key.slice(slash + 1))
  );
}

export function isLabelValue(value: string): boolean {
  return value === "" || NAME.test(value);
}

/**
 * Checks a change to labels: keys and values by the rule, an empty value meaning "remove".
 * INVALID_ARGUMENT naming the first label that is wrong.
 */
export function checkLabelChange(change: Labels): void {
  for (const [key, value] of Object.entries(change)) {
    if (!isLabelKey(key)) {
      throw invalidArgument(
        `label key ${JSON.stringify(key.slice(0, 300))} is not valid: ${LABEL_RULE}`,
      );
    }
    if (!isLabelValue(value)) {
      throw invalidArgument(
        `the value of label ${key} (${JSON.stringify(value.slice(0, 100))}) is not valid: ${LABEL_RULE}`,
      );
    }
  }
}

/**
 * `labels` with `change` applied (an empty value removes a label), or INVALID_ARGUMENT when the
 * result is past the bounds.
 */
export function applyLabelChange(labels: Labels, change: Labels): Labels {
  const next: Record<string, string> = { ...labels };
  for (const [key, value] of Object.entries(change)) {
    if (value === "") delete next[key];
    else next[key] = value;
  }
  checkLabelBounds(next);
  return sortedLabels(next);
}

/** INVALID_ARGUMENT when a session's labels are more or larger than allowed. */
export function checkLabelBounds(labels: Labels): void {
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) {
    throw invalidArgument(
      `a session has at most ${MAX_LABELS} labels; this would make ${entries.length}`,
    );
  }
  const bytes = entries.reduce((sum, [key, value]) => sum + key.length + value.length, 0);
  if (bytes > MAX_LABEL_BYTES) {
    throw invalidArgument(
      `a session's labels hold at most ${MAX_LABEL_BYTES} bytes of keys and values; this would make ${bytes}`,
    );
  }
}

/** Whether two label sets are the same. */
export function sameLabels(a: Labels, b: Labels): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}

/** Labels with their keys in order, as stored and reported. */
export function sortedLabels(labels: Labels): Labels {
  return Object.fromEntries(
    Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}

/** One requirement of a selector. */
export type Requirement =
  | { key: string; op: "in"; values: string[] }
  | { key: string; op: "notin"; values: string[] }
  | { key: string; op: "exists" }
  | { key: string; op: "!exists" };

/** A parsed label selector: sessions match when they meet every requirement. */
export type Selector = readonly Requirement[];

/**
 * Parses a label selector in Kubernetes syntax: requirements separated by commas, each
 * `key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key` or `!key`.
 * INVALID_ARGUMENT saying where it is wrong.
 */
export function parseSelector(text: string): Selector {
  if (text.length > MAX_SELECTOR_LENGTH) {
    throw invalidArgument(
      `label_selector has ${text.length} characters; at most ${MAX_SELECTOR_LENGTH} are allowed`,
    );
  }
  const requirements: Requirement[] = [];
  for (const part of splitRequirements(text)) {
    const requirement = parseRequirement(part.trim());
    requirements.push(requirement);
  }
  return requirements;
}

export function matchesSelector(labels: Labels, selector: Selector): boolean {
  return selector.every((requirement) => meets(labels[requirement.key], requirement));
}

function meets(value: string | undefined, requirement: Requirement): boolean {
  if (requirement.op === "exists") return value !== undefined;
  if (requirement.op === "!exists") return value === undefined;
  const listed = value !== undefined && requirement.values.includes(value);
  return requirement.op === "in" ? listed : !listed;
}

/** Commas outside parentheses separate requirements. */
function splitRequirements(text: string): string[] {
  if (text.trim() === "") return [];
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "(") depth++;
    else if (text[i] === ")") depth--;
    else if (text[i] === "," && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

function parseRequirement(part: string): Requirement {
  const fail = (why: string) =>
    invalidArgument(
      `label_selector: ${why} in ${JSON.stringify(part.slice(0, 200))}; e.g. user=alice,env!=prod,team`,
    );
  const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(part);
  if (set) {
    const [, key = "", op, list = ""] = set;
    const values = list.split(",").map((value) => value.trim());
    if (!isLabelKey(key)) throw fail("not a label key");
    if (values.some((value) => !isLabelValue(value))) throw fail("not a label value");
    return { key, op: op as "in" | "notin", values };
  }
  const equality = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part);
  if (equality) {
    const [, key = "", op, value = ""] = equality;
    if (!isLabelKey(key)) throw fail("not a label key");
    if (!isLabelValue(value)) throw fail("not a label value");
    return { key, op: op === "!=" ? "notin" : "in", values: [value] };
  }
  const negated = part.startsWith("!");
  const key = negated ? part.slice(1).trim() : part;
  if (!isLabelKey(key)) throw fail(part === "" ? "an empty requirement" : "not a requirement");
  return { key, op: negated ? "!exists" : "exists" };
}
