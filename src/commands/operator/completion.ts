import type { Command } from "commander";

/** A command's names for completion: its subcommands and its options (long and short). */
function words(command: Command): { commands: string[]; options: string[] } {
  return {
    commands: command.commands.map((sub) => sub.name()),
    options: command.options
      .flatMap((option) => [option.long, option.short].filter((flag): flag is string => !!flag))
      .concat("--help"),
  };
}

/**
 * A bash completion script generated from the command tree, so it always matches the commands:
 * the command after `sessionstore`, then that command's options (and the global ones).
 */
export function bashCompletion(program: Command): string {
  const global = words(program);
  const cases = program.commands
    .map((sub) => `    ${sub.name()}) opts="${words(sub).options.join(" ")}" ;;`)
    .join("\n");
  return `# bash completion for sessionstore: eval "$(sessionstore completion bash)" (e.g. in ~/.bashrc)
_sessionstore() {
  local cur command opts i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  command=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      -*) ;;
      *) command="\${COMP_WORDS[i]}"; break ;;
    esac
  done
  if [[ -z "$command" ]]; then
    if [[ "$cur" == -* ]]; then
      COMPREPLY=($(compgen -W "${global.options.join(" ")}" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "${global.commands.join(" ")}" -- "$cur"))
    fi
    return
  fi
  case "$command" in
${cases}
    *) opts="" ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts ${global.options.join(" ")}" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -F _sessionstore sessionstore
`;
}

const zshQuote = (text: string) => text.replace(/'/g, "'\\''").replace(/:/g, "\\:");

/** A zsh completion script from the same tree: commands with their descriptions, then options. */
export function zshCompletion(program: Command): string {
  const commands = program.commands
    .map((sub) => `    '${zshQuote(sub.name())}:${zshQuote(sub.description())}'`)
    .join("\n");
  const global = words(program).options.join(" ");
  const cases = program.commands
    .map(
      (sub) =>
        `    ${sub.name()}) _arguments '*:file:_files' ${words(sub)
          .options.map((o) => `'${o}'`)
          .join(" ")} ;;`,
    )
    .join("\n");
  return `#compdef sessionstore
# zsh completion for sessionstore: sessionstore completion zsh > "\${fpath[1]}/_sessionstore"
# (or: source <(sessionstore completion zsh))
_sessionstore() {
  local -a commands
  commands=(
${commands}
  )
  if (( CURRENT == 2 )); then
    if [[ "$words[CURRENT]" == -* ]]; then
      compadd -- ${global}
    else
      _describe 'command' commands
    fi
    return
  fi
  case "$words[2]" in
${cases}
  esac
}
if [[ "$funcstack[1]" == _sessionstore ]]; then _sessionstore "$@"; else compdef _sessionstore sessionstore; fi
`;
}
