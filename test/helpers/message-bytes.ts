/**
 * Messages travel as UTF-8 bytes below the wire (src/store/storage.ts); tests write and compare
 * them as text. These turn one into the other, so that assertions keep reading as text.
 */

/** Each text as the UTF-8 bytes a message is. */
export function bytesOf(texts: readonly string[]): Buffer[] {
  return texts.map((text) => Buffer.from(text, "utf8"));
}

/** Each message's bytes as text. */
export function textsOf(messages: readonly Uint8Array[]): string[] {
  return messages.map((bytes) => Buffer.from(bytes).toString("utf8"));
}
