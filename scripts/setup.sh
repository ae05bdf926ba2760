#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages that a make target needs and that are missing, and the
# pinned Rust toolchain. Quick and silent when everything is there.
#
#   scripts/setup.sh [--rust] PACKAGE...
#
# Each PACKAGE is checked first: with the check in the table below if it has one (a command that
# succeeds when what the package provides is usable), else with dpkg. Missing packages are
# installed with apt-get, through sudo when not root. When that is not possible (no apt-get, no
# root and no sudo, or apt-get fails), the script prints what to install and exits 1.
# --rust also installs, with rustup, the toolchain that rust-toolchain.toml pins, with its
# components (rustfmt, clippy) and target (wasm32-wasip1).
set -euo pipefail

# package          check (run with bash -c; exit 0 = present)
CHECKS='
python3            command -v python3
python3-venv       python3 -c "import ensurepip, venv"
build-essential    command -v cc && command -v c++ && command -v make
openssl            command -v openssl
time               test -x /usr/bin/time
util-linux         command -v taskset
curl               command -v curl
ca-certificates    test -s /etc/ssl/certs/ca-certificates.crt
binaryen           command -v wasm-opt
git                command -v git
redis-server       command -v redis-server && command -v redis-cli
chromium           command -v chromium
gzip               command -v gzip
skopeo             command -v skopeo
docker-registry    command -v docker-registry
prometheus         command -v prometheus && command -v promtool
nodejs             command -v node
'

say() { echo "setup: $*" >&2; }

check_for() { # the table's check for a package, or nothing
    awk -v p="$1" '$1 == p { $1 = ""; sub(/^ +/, ""); print; exit }' <<<"$CHECKS"
}

present() {
    local check
    check="$(check_for "$1")"
    if [[ -n "$check" ]]; then
        bash -c "$check" >/dev/null 2>&1
    else
        dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
    fi
}

rust=0
packages=()
for arg in "$@"; do
    case "$arg" in
        --rust) rust=1 ;;
        -h | --help)
            sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        -*)
            say "unknown option $arg"
            exit 2
            ;;
        *) packages+=("$arg") ;;
    esac
done

missing=()
for p in "${packages[@]}"; do
    present "$p" || missing+=("$p")
done

if [[ ${#missing[@]} -gt 0 ]]; then
    install_cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    fail() {
        say "missing: ${missing[*]}"
        say "$1"
        if [[ $(id -u) -eq 0 ]] || ! command -v sudo >/dev/null 2>&1; then
            say "install them as root with:  $install_cmd"
        else
            say "install them with:  sudo sh -c '$install_cmd'"
        fi
        say "(on other systems, install the equivalent packages), then run make again"
        exit 1
    }
    command -v apt-get >/dev/null 2>&1 || fail "this is not a Debian/Ubuntu system (no apt-get)"
    if [[ $(id -u) -eq 0 ]]; then
        sudo=()
    elif ! command -v sudo >/dev/null 2>&1; then
        fail "not root, and sudo is not installed"
    elif sudo -n true 2>/dev/null || [[ -t 0 ]]; then
        sudo=(sudo)
    else
        fail "not root, and sudo needs a password but there is no terminal to type it"
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt=("${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300)   # wait for another apt to finish
    if ! "${apt[@]}" update -qq || ! "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}"; then
        fail "apt-get failed"
    fi
    still=()
    for p in "${missing[@]}"; do
        present "$p" || still+=("$p")
    done
    if [[ ${#still[@]} -gt 0 ]]; then
        missing=("${still[@]}")
        fail "installed, but still not usable (check: $(check_for "${still[0]}"))"
    fi
fi

if [[ $rust -eq 1 ]]; then
    if ! command -v rustup >/dev/null 2>&1 || ! command -v cargo >/dev/null 2>&1; then
        say "Rust is missing: install it with rustup (see https://rustup.rs), then run make again"
        exit 1
    fi
    cd "$(dirname "$0")/.."
    # No toolchain name: the one rust-toolchain.toml pins (rustup 1.28 or later). Needed where
    # rustup does not install it by itself (RUSTUP_AUTO_INSTALL=0).
    if ! log="$(rustup toolchain install 2>&1)"; then
        echo "$log" >&2
        say "rustup could not install the toolchain of rust-toolchain.toml (rustup 1.28 or later is needed)"
        exit 1
    fi
    if ! rustup target list --installed | grep -qx wasm32-wasip1; then
        say "adding the wasm32-wasip1 Rust target"
        rustup target add wasm32-wasip1
    fi
    for component in rustfmt clippy; do
        tool=fmt
        [[ $component == clippy ]] && tool=clippy
        if ! cargo "$tool" --version >/dev/null 2>&1; then
            say "adding the $component Rust component"
            rustup component add "$component"
        fi
    done
fi
