#!/usr/bin/env bash
# Installs what the Python, Go and Rust clients and their interoperability tests need, into
# .tools/ (git-ignored), at pinned versions so that generated code does not drift between machines:
#   .tools/venv/                       Python: grpcio-tools (protoc + grpc plugin), grpcio, protobuf,
#                                      mypy with the grpcio and protobuf stubs (the client is
#                                      checked with mypy --strict), and clients/python installed
#                                      editable with its framework extras (langchain:
#                                      langchain-core), for the adapters' tests
#   .tools/venv-openai-agents/         Python 3.10+: clients/python[openai-agents] editable, with the
#                                      OpenAI Agents SDK, for its session adapter's tests (a venv of
#                                      its own: each framework brings dependencies of its own)
#   .tools/venv-adk/                   Python 3.11+: clients/python[adk] editable, with Google's
#                                      Agent Development Kit, for its session service's tests
#   .tools/bin/protoc-gen-python-grpcio  buf plugin: Python code through grpcio-tools' protoc
#   .tools/bin/protoc-gen-go{,-grpc}   buf plugins for Go
#   .tools/bin/grpcurl                 for the reflection test
# and builds the Go and Rust interop programs (test/interop/), which the tests rebuild when stale.
#
# A toolchain that is missing (python3, go, cargo) is skipped with a notice, unless
# SESSIONSTORE_REQUIRE_POLYGLOT=1 (set by .ci/run under CI), which makes it an error.
# Re-running is cheap: each part is redone only when its pinned versions change.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Pinned versions: changing one changes generated code; run `npm run generate` and commit.
grpcio_tools_version=1.85.1 # embeds protoc 35.1 and the grpc Python plugin
grpcio_version=1.85.3
protobuf_python_version=7.36.2
mypy_version=2.4.1
types_grpcio_version=1.85.0.20261028
types_protobuf_version=7.35.1.20260906
protoc_gen_go_version=v1.36.12
protoc_gen_go_grpc_version=v1.6.2
grpcurl_version=v1.9.4
langchain_core_version=1.8.1 # the LangChain adapter (clients/python[langchain]); Python 3.11+
# The OpenAI Agents SDK; scripts/constraints/openai-agents.txt pins it and all it pulls in.
openai_agents_version=0.24.0
# Google's Agent Development Kit (Python 3.11+); scripts/constraints/adk.txt pins all it pulls in.
google_adk_version=2.13.0

tools=$root/.tools
bin=$tools/bin
mkdir -p "$bin"
required=${SESSIONSTORE_REQUIRE_POLYGLOT:-}

# Reports a missing toolchain: an error when required, a notice otherwise.
missing() {
  if [ "$required" = 1 ]; then
    echo "setup-polyglot: $1 not found, and SESSIONSTORE_REQUIRE_POLYGLOT=1 requires it" >&2
    exit 1
  fi
  echo "setup-polyglot: $1 not found: skipping $2 (their tests will be skipped)"
}

# Whether the stamp file $1 holds $2 (the part is installed at these versions); see stamp().
current() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
stamp() { printf '%s' "$2" >"$1"; }

setup_python() {
  local python want
  python=$(command -v python3 || true)
  if [ -z "$python" ] || ! "$python" -c 'import sys; assert sys.version_info >= (3, 9)' 2>/dev/null; then
    missing "python3 (3.9 or later)" "the Python client"
    return
  fi
  # The framework extras, where this Python can have them (langchain-core 1.x needs 3.11).
  local client=clients/python extras=()
  if "$python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    client="clients/python[langchain]"
    extras=("langchain-core==$langchain_core_version")
  else
    missing "python3 3.11 or later" "the LangChain adapter"
  fi
  want="$grpcio_tools_version $grpcio_version $protobuf_python_version $mypy_version $types_grpcio_version $types_protobuf_version ${extras[*]} $(sha256sum clients/python/pyproject.toml | cut -c1-16)"
  if ! current "$tools/venv/.stamp" "$want"; then
    echo "setup-polyglot: Python venv in .tools/venv"
    rm -rf "$tools/venv"
    "$python" -m venv "$tools/venv"
    "$tools/venv/bin/pip" install --quiet --disable-pip-version-check \
      "grpcio-tools==$grpcio_tools_version" "grpcio==$grpcio_version" \
      "protobuf==$protobuf_python_version" "mypy==$mypy_version" \
      "types-grpcio==$types_grpcio_version" "types-protobuf==$types_protobuf_version" \
      "${extras[@]}" -e "$client"
    stamp "$tools/venv/.stamp" "$want"
  fi
  cat >"$bin/protoc-gen-python-grpcio" <<WRAPPER
#!/bin/sh
exec "$tools/venv/bin/python" "$root/scripts/protoc_gen_python_grpcio.py" "\$@"
WRAPPER
  chmod +x "$bin/protoc-gen-python-grpcio"
}

# A venv of its own for the adapter of one framework (each brings dependencies of its own):
# .tools/venv-$1 with clients/python[$1] editable and the packages after $3, every package pinned
# by scripts/constraints/$1.txt. $2: the least Python 3 minor version it needs; $3: what it is.
setup_framework_venv() {
  local name=$1 minor=$2 what=$3 python want venv=$tools/venv-$1 constraints=scripts/constraints/$1.txt
  shift 3
  python=$(command -v python3 || true)
  if [ -z "$python" ] || ! "$python" -c "import sys; assert sys.version_info >= (3, $minor)" 2>/dev/null; then
    missing "python3 (3.$minor or later, for $what)" "the $name adapter"
    return
  fi
  want="$* $(cat clients/python/pyproject.toml "$constraints" | sha256sum | cut -c1-16)"
  if ! current "$venv/.stamp" "$want"; then
    echo "setup-polyglot: Python venv of $what in .tools/venv-$name"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -c "$constraints" \
      "$@" -e "clients/python[$name]"
    stamp "$venv/.stamp" "$want"
  fi
}

setup_go() {
  if ! command -v go >/dev/null; then
    missing go "the Go client and grpcurl"
    return
  fi
  local package version name
  while read -r package version; do
    name=$(basename "$package")
    if ! current "$bin/.$name.version" "$version" || [ ! -x "$bin/$name" ]; then
      echo "setup-polyglot: go install $package@$version"
      GOBIN=$bin go install "$package@$version"
      stamp "$bin/.$name.version" "$version"
    fi
  done <<LIST
google.golang.org/protobuf/cmd/protoc-gen-go $protoc_gen_go_version
google.golang.org/grpc/cmd/protoc-gen-go-grpc $protoc_gen_go_grpc_version
github.com/fullstorydev/grpcurl/cmd/grpcurl $grpcurl_version
LIST
  echo "setup-polyglot: building the Go client, its example and the interop program"
  (cd clients/go && go build ./... && go vet ./...)
  (cd test/interop/go && go build -o /dev/null . && go vet .)
  # test/interop/go-module.test.ts publishes the Go client to a file-based module proxy with it.
  (cd scripts/go-module-proxy && go build -o /dev/null . && go vet .)
}

setup_rust() {
  if ! command -v cargo >/dev/null; then
    missing cargo "the motosan (Rust) interop program"
    return
  fi
  echo "setup-polyglot: building the Rust client and the motosan interop program (the first build takes a minute or two)"
  # The client's tests and example too, so that test/interop/rust-client.test.ts only runs them.
  cargo test --quiet --locked --all-features --no-run --manifest-path clients/rust/Cargo.toml
  cargo build --quiet --locked --all-features --examples --manifest-path clients/rust/Cargo.toml
  cargo build --quiet --locked --manifest-path test/interop/motosan/Cargo.toml
  # clippy, only where it is installed (no components are installed for it).
  if cargo clippy --version >/dev/null 2>&1; then
    cargo clippy --quiet --locked --all-features --all-targets --manifest-path clients/rust/Cargo.toml -- -D warnings
  fi
}

setup_python
setup_framework_venv openai-agents 10 "the OpenAI Agents SDK" "openai-agents==$openai_agents_version" \
  "grpcio==$grpcio_version" "protobuf==$protobuf_python_version"
setup_framework_venv adk 11 "Google ADK" "google-adk==$google_adk_version" \
  "grpcio==$grpcio_version" "protobuf==$protobuf_python_version"
setup_go
setup_rust
