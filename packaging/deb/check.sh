#!/usr/bin/env bash
# Installs a built rdg .deb on this machine, checks what it installed, purges it and checks
# that nothing of it is left. Needs root and dpkg. Refuses to run when anything the package
# would install is already there (an rdg installed by hand, a configuration in /etc/rdg), so
# it never overwrites or removes files it did not install.
#
#   sudo bash packaging/deb/check.sh target/debian/rdg_0.1.0-1_amd64.deb
set -euo pipefail
deb=${1:?usage: check.sh PATH/TO/rdg_VERSION_ARCH.deb}
[ -f "$deb" ] || { echo "no such package: $deb" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "check.sh installs the package: run it as root" >&2; exit 2; }
command -v dpkg >/dev/null || { echo "check.sh needs dpkg" >&2; exit 2; }

fail() { echo "FAILED: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

pkg=$(dpkg-deb --field "$deb" Package)
version=$(dpkg-deb --field "$deb" Version)
[ "$pkg" = rdg ] || fail "$deb is package $pkg, not rdg"
echo "checking $deb (rdg $version)"

# What the package ships: regular files and symlinks, and its directories.
mapfile -t shipped_files < <(dpkg-deb --fsys-tarfile "$deb" | tar -t -v | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|')
mapfile -t shipped_dirs < <(dpkg-deb --fsys-tarfile "$deb" | tar -t -v | awk '$1 ~ /^d/ {print $6}' | sed 's|^\./|/|; s|/$||' | grep -v '^\.\?$')

# Refuse to clobber: an installed rdg package or any file the package would put in place.
if dpkg-query --status "$pkg" >/dev/null 2>&1; then
  echo "REFUSED: the package $pkg is already installed on this machine (dpkg -s $pkg);" \
    "this check installs and purges it, so it runs only where rdg is not installed" >&2
  exit 3
fi
existing=()
for f in "${shipped_files[@]}"; do
  if [ -e "$f" ] || [ -L "$f" ]; then existing+=("$f"); fi
done
if [ "${#existing[@]}" -gt 0 ]; then
  echo "REFUSED: these files of the package already exist here and would be overwritten," \
    "then removed by the purge: ${existing[*]}; move them away or check on another machine" >&2
  exit 3
fi
preexisting_dirs=()
for d in "${shipped_dirs[@]}"; do
  [ ! -d "$d" ] || preexisting_dirs+=("$d")
done
dir_preexisted() {
  local d
  for d in "${preexisting_dirs[@]}"; do [ "$d" != "$1" ] || return 0; done
  return 1
}

# From here on the package is ours: purge it whatever happens.
installed=""
cleanup() {
  local rc=$?
  if [ -n "$installed" ]; then
    echo "purging after a failed check" >&2
    dpkg --purge "$pkg" >/dev/null 2>&1 || true
  fi
  exit "$rc"
}
trap cleanup EXIT

echo "== dpkg -i"
dpkg -i "$deb"
installed=yes
dpkg-query --status "$pkg" | grep -q '^Status: install ok installed' || fail "dpkg -s $pkg: not installed"
mapfile -t listed < <(dpkg -L "$pkg")
ok "installed, $(printf '%s\n' "${listed[@]}" | wc -l) paths (dpkg -L)"

echo "== the binary"
[ "$(command -v rdg)" = /usr/bin/rdg ] || fail "rdg on PATH is $(command -v rdg), not /usr/bin/rdg"
got=$(/usr/bin/rdg --version)
[ "$got" = "rdg ${version%-*}" ] || fail "/usr/bin/rdg --version says '$got', package version $version"
ok "/usr/bin/rdg --version: $got"

echo "== the kubectl plugin"
for link in kubectl-rdg kubectl_complete-rdg; do
  [ "$(readlink "/usr/bin/$link")" = rdg ] || fail "/usr/bin/$link is not a symlink to rdg"
done
/usr/bin/kubectl-rdg --help | grep -q '^Usage: kubectl rdg' || fail "kubectl-rdg --help is not the plugin's"
[ "$(/usr/bin/kubectl_complete-rdg fe)" = "$(printf 'fence\n:4')" ] || fail "kubectl_complete-rdg fe: $(/usr/bin/kubectl_complete-rdg fe)"
zcat /usr/share/man/man1/kubectl-rdg.1.gz | grep -q '^\.TH kubectl-rdg 1' || fail "no manual page kubectl-rdg(1)"
ok "/usr/bin/kubectl-rdg and /usr/bin/kubectl_complete-rdg -> rdg, kubectl-rdg(1)"

echo "== manual pages"
subcommands=(agent check-config controller crd demo gate install receive simulate status transmit)
for page in rdg "${subcommands[@]/#/rdg-}"; do
  f=/usr/share/man/man1/$page.1.gz
  [ -f "$f" ] || fail "no $f"
  zcat "$f" | grep -q "^\.TH $page 1" || fail "$f is not the manual page of $page"
done
if command -v man >/dev/null; then
  [ "$(man -w rdg)" = /usr/share/man/man1/rdg.1.gz ] || fail "man -w rdg: $(man -w rdg)"
  man -w rdg-agent >/dev/null || fail "man -w rdg-agent"
  ok "man -w rdg: $(man -w rdg)"
fi
ok "rdg.1 and ${#subcommands[@]} subcommand pages in /usr/share/man/man1"

echo "== shell completions"
bash_c=/usr/share/bash-completion/completions/rdg
zsh_c=/usr/share/zsh/vendor-completions/_rdg
fish_c=/usr/share/fish/vendor_completions.d/rdg.fish
for f in "$bash_c" "$zsh_c" "$fish_c"; do
  [ -s "$f" ] || fail "no $f"
  grep -q check-config "$f" || fail "$f does not complete check-config"
done
bash -c "source $bash_c && complete -p rdg" >/dev/null || fail "$bash_c does not register a completion for rdg"
ok "bash, zsh and fish completions"

echo "== the example configuration"
conffiles=$(dpkg-query --showformat='${Conffiles}\n' --show "$pkg")
grep -q '^ */etc/rdg/infocast.yaml ' <<<"$conffiles" || fail "/etc/rdg/infocast.yaml is not a conffile: $conffiles"
/usr/bin/rdg check-config /etc/rdg/infocast.yaml || fail "rdg check-config /etc/rdg/infocast.yaml"
ok "/etc/rdg/infocast.yaml is a conffile and valid"

echo "== the systemd unit"
unit=/usr/lib/systemd/system/rdg@.service
[ -f "$unit" ] || fail "no $unit"
grep -q '^ExecStart=/usr/bin/rdg agent --config /etc/rdg/%i.yaml' "$unit" || fail "$unit does not run /usr/bin/rdg agent"
if compgen -G "/etc/systemd/system/*.wants/rdg@*" >/dev/null; then
  fail "an rdg@ instance is enabled after installation: $(ls /etc/systemd/system/*.wants/rdg@*)"
fi
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
  ok "systemd-analyze verify $unit"
else
  echo "!! SKIPPED: systemd-analyze verify $unit (no systemd-analyze on this machine)"
fi
ok "$unit installed, no instance enabled"

echo "== dpkg --purge"
dpkg --purge "$pkg"
installed=""
if dpkg-query --status "$pkg" >/dev/null 2>&1; then fail "dpkg -s $pkg still succeeds after the purge"; fi
left=()
for p in "${listed[@]}"; do
  [ "$p" != /. ] || continue
  if [ -d "$p" ] && [ ! -L "$p" ]; then
    dir_preexisted "$p" || left+=("$p")
  elif [ -e "$p" ] || [ -L "$p" ]; then
    left+=("$p")
  fi
done
[ "${#left[@]}" = 0 ] || fail "left after the purge: ${left[*]}"
if dir_preexisted /etc/rdg; then
  ok "/etc/rdg existed before the install (dpkg removes it only when it is empty)"
else
  [ ! -e /etc/rdg ] || fail "/etc/rdg is left after the purge"
fi
ok "purged: dpkg -s $pkg fails, none of the ${#listed[@]} paths is left (directories that existed before are kept)"
