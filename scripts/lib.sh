# shellcheck shell=bash
# Helpers shared by the project's scripts: logging, root escalation, the cache
# directory and a private apt configuration that reuses the machine's mirror.

tvd_log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
tvd_warn() { printf '\033[1;33mwarning:\033[0m %s\n' "$*" >&2; }
tvd_die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

TVD_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TVD_CACHE_DIR=${TVD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tvd}

# Run a command as root: directly when we are root, else through sudo.
tvd_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        tvd_die "need root (or sudo) to run: $*"
    fi
}

# The archive URI the machine already uses for Debian, read from its own apt
# configuration (deb822 sources first, then one-line sources.list).
tvd_debian_mirror() {
    local f uri=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk '
            /^[[:space:]]*$/ { if (deb && u != "") { print u; exit } deb = 0; u = ""; next }
            /^URIs:/ { u = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) deb = 1 }
            END { if (deb && u != "") print u }' "$f" | head -n 1)
        [ -n "$uri" ] && break
    done
    if [ -z "$uri" ]; then
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$f" ] || continue
            uri=$(awk '$1 == "deb" && $0 !~ /security/ {
                        for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f" | head -n 1)
            [ -n "$uri" ] && break
        done
    fi
    [ -n "$uri" ] || tvd_die "cannot find a Debian archive URI in the apt configuration"
    printf '%s\n' "${uri%/}"
}

# Prepare a private apt configuration in $1 for one "TYPE SUITE" line and
# print the apt-get options that select it. The system's sources are untouched.
tvd_private_apt() {
    local dir=$1 type=$2 suite=$3 mirror
    mirror=$(tvd_debian_mirror)
    mkdir -p "$dir/parts" "$dir/lists/partial" "$dir/cache/archives/partial"
    printf '%s [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
        "$type" "$mirror" "$suite" >"$dir/sources.list"
    printf '%s\n' -o "Dir::Etc::SourceList=$dir/sources.list" \
        -o "Dir::Etc::SourceParts=$dir/parts" \
        -o "Dir::State::Lists=$dir/lists" \
        -o "Dir::Cache=$dir/cache" \
        -o "APT::Sandbox::User=root"
}
