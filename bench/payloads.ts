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

/**
 * `count` messages of an OpenAI Chat Completions conversation, about `bytes` each: turns of a
 * user message, an assistant message calling a tool, the tool's result and the assistant's
 * answer, each call with its own id. What a context window (Load with whole_turns) reads.
 */
export function makeChatTurns(count: number, bytes = MESSAGE_BYTES): string[] {
  const messages: string[] = [];
  const padded = (prefix: string, suffix: string, seed: number) => {
    const room = Math.max(0, bytes - prefix.length - suffix.length);
    let content = "";
    for (let word = seed; content.length < room; word += 7)
      content += `${WORDS[word % WORDS.length]} `;
    return `${prefix}${content.slice(0, room)}${suffix}`;
  };
  for (let seq = 0; seq < count; seq++) {
    const turn = Math.floor(seq / 4);
    const id = `call_${turn.toString(36)}`;
    const shapes = [
      () => padded('{"role":"user","content":"', '"}', seq),
      () =>
        padded(
          `{"role":"assistant","content":null,"tool_calls":[{"id":"${id}","type":"function","function":{"name":"search","arguments":"{\\"q\\":\\"`,
          '\\"}"}}]}',
          seq,
        ),
      () => padded(`{"role":"tool","tool_call_id":"${id}","content":"`, '"}', seq),
      () => padded('{"role":"assistant","content":"', '"}', seq),
    ];
    messages.push((shapes[seq % 4] as () => string)());
  }
  return messages;
}
