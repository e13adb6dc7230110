/** A fenced code block of a Markdown file, with the `<!-- ci: ... -->` comment on the line before. */
export interface CodeBlock {
  /** The Markdown file's path, as given. */
  file: string;
  /** The line of the opening fence, from 1. */
  line: number;
  /** The fence's info string: `sh`, `ts`, `python`, `go`, `text`, or "" for none. */
  language: string;
  /** The lines between the fences, each ending with a newline. */
  code: string;
  /** What the comment says after `ci:`, trimmed; undefined without such a comment. */
  ci: string | undefined;
}

const FENCE = /^```(\S*)\s*$/;
const CI_COMMENT = /^<!--\s*ci:\s*([\s\S]*?)\s*-->$/;

/** The fenced code blocks of `markdown` (backtick fences at the start of a line), in order. */
export function codeBlocks(markdown: string, file: string): CodeBlock[] {
  const lines = markdown.split("\n");
  const blocks: CodeBlock[] = [];
  for (let index = 0; index < lines.length; index++) {
    const opening = FENCE.exec(lines[index] ?? "");
    if (!opening) continue;
    const closing = lines.findIndex((line, at) => at > index && /^```\s*$/.test(line));
    if (closing < 0) throw new Error(`${file}:${index + 1}: code block never closed`);
    blocks.push({
      file,
      line: index + 1,
      language: opening[1] ?? "",
      code: lines
        .slice(index + 1, closing)
        .map((line) => `${line}\n`)
        .join(""),
      ci: CI_COMMENT.exec(lines[index - 1]?.trim() ?? "")?.[1],
    });
    index = closing;
  }
  return blocks;
}

/** A block that runs, and the block after it that shows what it prints, if any. */
export interface Command {
  block: CodeBlock;
  output?: CodeBlock;
}

/**
 * The blocks that `runs` selects, each with the first `<!-- ci: output -->` block after it in the
 * same file, before the next selected block. An output block that follows none is left out, for
 * the caller to report.
 */
export function commands(blocks: CodeBlock[], runs: (block: CodeBlock) => boolean): Command[] {
  const found: Command[] = [];
  for (const block of blocks) {
    if (runs(block)) found.push({ block });
    const last = found.at(-1);
    if (block.ci === "output" && last?.block.file === block.file && !last.output) {
      last.output = block;
    }
  }
  return found;
}
