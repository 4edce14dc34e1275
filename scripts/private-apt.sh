# Sourced by scripts/go-refs.sh and scripts/sig-tools.sh: Debian packages of other suites
# through a PRIVATE apt configuration under $D/apt (the machine's apt sources untouched,
# nothing installed), the archive taken from this machine's own apt configuration.
#
#   private_apt_update NAME SUITE...   # sets O (the apt options) and reads the lists
#   private_apt_download NAME WANT...  # WANT: "package|version|suite"; downloads into $D/debs
#                                      # and sets picks (package=version)

private_apt_update() {
  local name=$1; shift
  mkdir -p "$D"/apt/lists/partial "$D"/apt/cache/archives/partial "$D"/debs "$D"/x
  local archive=${ARCHIVE:-$("$(dirname "${BASH_SOURCE[0]}")"/debian-archive.sh)}
  local s
  for s in "$@"; do echo "deb $archive $s main"; done > "$D"/apt/sources.list
  O=(-o Dir::Etc::SourceList="$D"/apt/sources.list -o Dir::Etc::SourceParts=/dev/null
     -o Dir::State::Lists="$D"/apt/lists -o Dir::Cache="$D"/apt/cache
     -o Dir::State::status=/var/lib/dpkg/status -o APT::Get::List-Cleanup=0
     -o Debug::NoLocking=1)
  echo "$name: reading Debian $* package lists (private apt configuration in $D/apt)" >&2
  apt-get "${O[@]}" update -qq >/dev/null
}

# A pinned version that its suite no longer offers (sid moves) is replaced by the newest
# one offered, loudly: the tests then say whether the newer version still does.
private_apt_download() {
  local name=$1; shift
  local w pkg ver suite offered newest
  picks=()
  for w in "$@"; do
    IFS='|' read -r pkg ver suite <<< "$w"
    offered=$(apt-cache "${O[@]}" madison "$pkg" | awk -F'|' -v s="$suite" '$3 ~ s"/" {gsub(/ /,"",$2); print $2}')
    if grep -qxF "$ver" <<< "$offered"; then
      picks+=("$pkg=$ver")
    else
      newest=$(sort -V <<< "$offered" | tail -1)
      [ -n "$newest" ] || { echo "$name: $pkg is not offered by Debian $suite" >&2; exit 1; }
      echo "$name: WARNING: $pkg $ver is gone from $suite; using $newest instead" >&2
      picks+=("$pkg=$newest")
    fi
  done
  (cd "$D"/debs && apt-get "${O[@]}" download -qq "${picks[@]}" 2>&1 | grep -v 'Download is performed unsandboxed' || true)
}
