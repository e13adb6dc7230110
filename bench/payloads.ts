/** Typical size of one agent message in the scenarios, in bytes of JSON text. */
export const MESSAGE_BYTES = 450;

const WORDS = (
  "the agent called a tool and read the result before it wrote an answer to the user " +
  "with a plan for the next step of the task including files tests and a short summary"
).split(" ");

const ROLES = ["user", "assistant", "tool"];

/**
 * `count` distinct agent-like messages (ASCII JSON objects) of exactly `bytes` bytes each,
 * the same in every run: `{"role":…,"turn":…,"content":"…"}`.
 */
export function makePayloads(count: number, bytes = MESSAGE_BYTES): string[] {
  const payloads: string[] = [];
  for (let turn = 0; turn < count; turn++) {
    const prefix = `{"role":"${ROLES[turn % ROLES.length]}","turn":${turn},"content":"`;
    const suffix = '"}';
    const room = bytes - prefix.length - suffix.length;
    let content = "";
    for (let word = turn; content.length < room; word += 7) {
      content += `${WORDS[word % WORDS.length]} `;
    }
    payloads.push(`${prefix}${content.slice(0, room)}${suffix}`);
  }
  return payloads;
}

/** `size` messages starting at `offset` in `payloads`, wrapping around. */
export function takeMessages(payloads: readonly string[], offset: number, size: number): string[] {
  const messages: string[] = [];
  for (let index = 0; index < size; index++) {
    messages.push(payloads[(offset + index) % payloads.length] as string);
  }
  return messages;
}
