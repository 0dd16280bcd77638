# shellcheck shell=bash
# Shared helpers for scripts/samba-dc and scripts/slapd-ad.
# Sourced, not executed. Everything informational goes to stderr; stdout is
# reserved for `export NAME='value'` lines so `eval "$(script start)"` works.

# Debian puts samba/slapd/slappasswd in /usr/sbin, not always on a CI PATH.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac

pb_log() { printf '%s: %s\n' "${PB_PROG:-photobulk}" "$*" >&2; }
pb_die() { pb_log "error: $*"; exit 1; }

# Print `export NAME='value'` with the value safely single-quoted.
pb_export() {
  local name=$1 value=$2
  printf "export %s='%s'\n" "$name" "${value//\'/\'\\\'\'}"
}

# Random password with upper, lower, digit and punctuation (satisfies AD
# complexity rules) and no characters that need shell or LDIF quoting.
pb_random_password() {
  local r
  r=$(openssl rand -base64 48 | tr -dc 'A-Za-z0-9' | cut -c1-20)
  printf 'Pb7-%s' "$r"
}

# pb_lock DIR -- serialize start/stop/seed on one DIR (fd 9; the daemons are
# started with 9>&- so they never inherit the lock).
pb_lock() {
  mkdir -p "$1"
  exec 9>"$1/.lock"
  if ! flock -w 300 9; then
    pb_die "timed out waiting for the lock on $1"
  fi
}

pb_pid_alive() {
  local pid=${1:-}
  [[ -n $pid && $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# pb_ensure_packages CMD:PKG ... -- installs the packages whose command is
# missing (apt-get update once, non-interactive, Debian services not started).
pb_ensure_packages() {
  local missing=() spec
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null 2>&1 || missing+=("${spec#*:}")
  done
  pb_apt_install "${missing[@]}"
}

# pb_ensure_debs PKG ... -- installs the Debian packages that are not installed
# (for packages without a command of their own: -dev libraries, modules).
pb_ensure_debs() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  pb_apt_install "${missing[@]}"
}

# pb_apt_install PKG ... -- apt-get install (nothing when no PKG), with Debian's
# own samba/slapd services kept from starting.
pb_apt_install() {
  (($#)) || return 0
  local missing=("$@")
  [[ $(id -u) -eq 0 ]] || pb_die "missing packages (${missing[*]}) and not root; install them first"
  pb_log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # slapd: do not let the postinst create/start a system directory.
  if command -v debconf-set-selections >/dev/null 2>&1; then
    printf '%s\n' 'slapd slapd/no_configuration boolean true' | debconf-set-selections || true
  fi
  # Keep Debian's init scripts from starting samba/smbd/nmbd/slapd.
  local made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0
  {
    apt-get -o DPkg::Lock::Timeout=600 update -qq &&
      apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold install -y -qq "${missing[@]}"
  } >&2 || rc=$?
  if ((made_policy)); then rm -f /usr/sbin/policy-rc.d; fi
  ((rc == 0)) || pb_die "apt-get install ${missing[*]} failed (rc $rc)"
  pb_stop_system_services
}

# Stop the Debian system daemons in case a postinst started them anyway (we
# run our own instances). Only the daemons from the system pid files.
pb_stop_system_services() {
  local f pid
  for f in /run/samba/samba.pid /run/samba/smbd.pid /run/samba/nmbd.pid \
    /run/samba/winbindd.pid /run/slapd/slapd.pid; do
    [[ -r $f ]] || continue
    pid=$(tr -dc '0-9' <"$f")
    if pb_pid_alive "$pid"; then
      pb_log "stopping system daemon from $f (pid $pid)"
      kill "$pid" 2>/dev/null || true
    fi
  done
}

# pb_make_tls DIR/tls IP [DNSNAME...] -- a throwaway CA and a server certificate
# with SAN IP:<ip>, DNS:localhost and DNS:<each DNSNAME> (Samba: the DC's host name,
# which DC discovery connects to). Re-issues the server cert when IP or names changed.
pb_make_tls() {
  local d=$1 ip=$2 san n
  shift 2
  san="IP:$ip,DNS:localhost"
  for n in "$@"; do san="$san,DNS:$n"; done
  mkdir -p "$d"
  chmod 700 "$d"
  if [[ ! -s $d/ca.pem || ! -s $d/ca.key ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -subj "/O=PhotoBulk test/CN=PhotoBulk test CA $(basename "$(dirname "$d")")" \
      -addext 'basicConstraints=critical,CA:TRUE' \
      -addext 'keyUsage=critical,keyCertSign,cRLSign' \
      -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null ||
      pb_die "openssl: CA generation failed"
    rm -f "$d/server.pem"
  fi
  if [[ -s $d/server.pem && -s $d/server.key && "$(cat "$d/server.ip" 2>/dev/null)" == "$san" ]]; then
    return 0
  fi
  local ext=$d/server.ext
  cat >"$ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san
EOF
  openssl req -newkey rsa:2048 -nodes -sha256 -subj "/O=PhotoBulk test/CN=$ip" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null ||
    pb_die "openssl: server key generation failed"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "$ext" -out "$d/server.pem" 2>/dev/null ||
    pb_die "openssl: signing the server certificate failed"
  chmod 600 "$d/server.key" "$d/ca.key"
  chmod 644 "$d/ca.pem" "$d/server.pem"
  printf '%s\n' "$san" >"$d/server.ip"
  rm -f "$d/server.csr"
}

# pb_port_busy IP PORT -- something already accepts TCP connections there.
pb_port_busy() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# pb_ldap_ready URL CAFILE [STARTTLS=0|1] -- anonymous rootDSE read succeeds.
pb_ldap_ready() {
  local url=$1 ca=$2 starttls=${3:-0} extra=()
  ((starttls)) && extra=(-ZZ)
  LDAPTLS_CACERT=$ca LDAPTLS_REQCERT=demand timeout 10 \
    ldapsearch -LLL -x -H "$url" "${extra[@]}" -o nettimeout=5 -b '' -s base \
    '(objectClass=*)' namingContexts >/dev/null 2>&1
}

# pb_b64 STRING -- base64 without line wrapping.
pb_b64() { printf '%s' "$1" | base64 -w0; }

# pb_ldif_attr NAME VALUE -- one LDIF line, base64 when not plain ASCII-safe.
pb_ldif_attr() {
  local name=$1 value=$2
  if LC_ALL=C awk -v v="$value" 'BEGIN {
        if (v ~ /^[ :<]/ || v ~ / $/ || v ~ /[^\x20-\x7e]/) exit 1; exit 0 }'; then
    printf '%s: %s\n' "$name" "$value"
  else
    printf '%s:: %s\n' "$name" "$(pb_b64 "$value")"
  fi
}

# pb_seed_ldif_awk -- generates seed users from "index" lines on stdin.
# Variables: base (OU DN), domain (mail/UPN domain), classes (objectClass lines
# joined by |), prefix (account prefix, "seed"), given (givenName, "Seed"),
# extra (extra LDIF lines per entry, may be empty). Every 10th user has a non-ASCII displayName/givenName
# (written raw as UTF-8 and base64-encoded by the caller's awk function).
pb_seed_awk_program() {
  cat <<'AWK'
function b64(s,    out, i, n, c1, c2, c3, t, chars) {
  chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  out = ""; n = length(s)
  for (i = 1; i <= n; i += 3) {
    c1 = ord[substr(s, i, 1)]
    c2 = (i + 1 <= n) ? ord[substr(s, i + 1, 1)] : 0
    c3 = (i + 2 <= n) ? ord[substr(s, i + 2, 1)] : 0
    t = c1 * 65536 + c2 * 256 + c3
    out = out substr(chars, int(t / 262144) % 64 + 1, 1) substr(chars, int(t / 4096) % 64 + 1, 1)
    out = out ((i + 1 <= n) ? substr(chars, int(t / 64) % 64 + 1, 1) : "=")
    out = out ((i + 2 <= n) ? substr(chars, t % 64 + 1, 1) : "=")
  }
  return out
}
BEGIN { for (i = 0; i < 256; i++) ord[sprintf("%c", i)] = i; nc = split(classes, cls, "|") }
{
  n = sprintf("%05d", $1); u = prefix "." n
  printf "dn: CN=%s,%s\n", u, base
  for (i = 1; i <= nc; i++) printf "objectClass: %s\n", cls[i]
  printf "cn: %s\nsAMAccountName: %s\nuserPrincipalName: %s@%s\nmail: %s@%s\nemployeeID: E%s\n", u, u, u, domain, u, domain, n
  if ($1 % 10 == 0) {
    printf "givenName:: %s\nsn:: %s\ndisplayName:: %s\n", b64("Zoë"), b64("Ångström-Müller"), b64("Zoë Ångström-Müller " n)
  } else {
    printf "givenName: %s\nsn: User %s\ndisplayName: %s User %s\n", given, n, given, n
  }
  if (extra != "") printf "%s\n", extra
  printf "\n"
}
AWK
}

# pb_seed_prefix OU -- account-name prefix for seed users in OU: the OU name
# lower-cased ("Seed" -> "seed"), so different OUs never collide on the
# domain-unique sAMAccountName.
pb_seed_prefix() {
  local p
  p=$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')
  [[ $p =~ ^[a-z0-9][a-z0-9-]{0,13}$ ]] ||
    pb_die "--ou must be 1-14 characters [A-Za-z0-9-] (it becomes the account prefix), got '$1'"
  printf '%s' "$p"
}

# pb_special_user BASE CLASSES OU CN SAM UPN MAIL EMPLOYEEID GIVEN SN DISPLAY
# One LDIF entry (no changetype: use `ldapmodify -a` or slapadd).
pb_special_user() {
  local base=$1 classes=$2 ou=$3 cn=$4 sam=$5 upn=$6 mail=$7 eid=$8 given=$9 sn=${10} display=${11}
  local rdn c
  rdn=${cn//\\/\\5C}
  pb_ldif_attr dn "CN=$rdn,OU=$ou,$base"
  for c in ${classes//|/ }; do printf 'objectClass: %s\n' "$c"; done
  pb_ldif_attr cn "$cn"
  pb_ldif_attr sAMAccountName "$sam"
  pb_ldif_attr userPrincipalName "$upn"
  pb_ldif_attr mail "$mail"
  pb_ldif_attr employeeID "$eid"
  pb_ldif_attr givenName "$given"
  pb_ldif_attr sn "$sn"
  pb_ldif_attr displayName "$display"
  printf '\n'
}

# pb_special_ldif BASE DOMAIN CLASSES -- the special users (same on Samba and
# slapd); the table is in scripts/README.md. Samba refuses '*' and '\' in
# sAMAccountName (rc 19), so those two carry the metacharacter in cn, UPN,
# employeeID, sn and displayName, with a dotted sAMAccountName.
pb_special_ldif() {
  local b=$1 d=$2 c=$3
  pb_special_user "$b" "$c" People john.smith john.smith "john.smith@$d" "John.Smith@$d" \
    1001 John Smith 'John Smith'
  pb_special_user "$b" "$c" People jane.doe jane.doe "jane.doe@$d" "Jane.Doe@$d" \
    1002 Jane Doe 'Jane Doe'
  pb_special_user "$b" "$c" People 'star*user' 'star.user' "star*user@$d" "star.user@$d" \
    '1003*' Star 'User*' 'Star *User'
  pb_special_user "$b" "$c" People 'paren(user)' 'paren(user)' "paren(user)@$d" "paren.user@$d" \
    '(1004)' Paren '(User)' 'Paren (User)'
  pb_special_user "$b" "$c" People 'back\slash' 'back.slash' "back\\slash@$d" "back.slash@$d" \
    '10\05' Back "Slash\\" 'Back\Slash'
  pb_special_user "$b" "$c" People 'zoë.müller' 'zoë.müller' "zoë.müller@$d" "zoe.mueller@$d" \
    '1006' 'Zoë' 'Müller' 'Zoë Müller'
  # Decoys: they match the special values only when a client forgets to escape.
  pb_special_user "$b" "$c" Decoys 'starXuser' 'starXuser' "starXuser@$d" "starx.user@$d" \
    '10034' Star 'UserX' 'Star XUser'
  pb_special_user "$b" "$c" Decoys 'zoe.muller' 'zoe.muller' "zoe.muller@$d" "zoe.muller@$d" \
    '1007' 'Zoe' 'Muller' 'Zoe Muller'
}

# pb_use_crate_mirror -- on machines that reach no crate registry, the offline mirror that sits
# beside the checkout (../shared/cargo-registry, or PB_CRATE_MIRROR) points cargo at itself;
# elsewhere nothing happens.
pb_use_crate_mirror() {
  local mirror=${PB_CRATE_MIRROR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/../shared/cargo-registry}
  [[ -x $mirror/install ]] || return 0
  "$mirror/install" >&2 || pb_die "the offline crate mirror's install script failed ($mirror)"
}

# pb_cargo_tool NAME -- 0 when `cargo NAME` exists; otherwise one clear line and 1.
pb_cargo_tool() {
  cargo "$1" --version >/dev/null 2>&1 && return 0
  pb_log "cargo $1 is not installed on this machine: skipping the $1 check (it runs where it is installed)"
  return 1
}

# PowerShell 7.6 as a .NET global tool (7.7.0, the unpinned default, fails on these machines).
PB_PWSH_VERSION=7.6.10
PB_PESTER_VERSION=5.7.1

# pb_ensure_pwsh -- sets PB_PWSH to a pwsh 7 (PB_PWSH given, on PATH, or ~/.dotnet/tools/pwsh),
# installing PowerShell with `dotnet tool install` when there is none.
pb_ensure_pwsh() {
  local tools=${DOTNET_TOOLS_DIR:-$HOME/.dotnet/tools}
  if [[ -z ${PB_PWSH:-} ]]; then
    if [[ -x $tools/pwsh ]]; then PB_PWSH=$tools/pwsh
    elif command -v pwsh >/dev/null 2>&1; then PB_PWSH=$(command -v pwsh)
    fi
  fi
  if [[ -z ${PB_PWSH:-} ]]; then
    command -v dotnet >/dev/null 2>&1 || pb_die "no pwsh and no dotnet: install the .NET SDK (or PowerShell 7) first"
    pb_log "installing PowerShell $PB_PWSH_VERSION (dotnet tool install --global PowerShell)"
    dotnet tool install --global PowerShell --version "$PB_PWSH_VERSION" >&2 ||
      pb_die "dotnet tool install PowerShell $PB_PWSH_VERSION failed"
    PB_PWSH=$tools/pwsh
  fi
  [[ -x $PB_PWSH ]] || pb_die "pwsh not found at $PB_PWSH"
  export PB_PWSH
}

# pb_ensure_pester DIR -- sets PB_PESTER to Pester's module manifest, restored from NuGet into DIR
# by a one-item PackageDownload project (Pester is a NuGet package too; no PowerShell Gallery).
pb_ensure_pester() {
  local dir=$1 manifest
  manifest=$dir/packages/pester/$PB_PESTER_VERSION/tools/Pester.psd1
  if [[ ! -f $manifest ]]; then
    command -v dotnet >/dev/null 2>&1 || pb_die "dotnet is needed to fetch Pester from NuGet"
    mkdir -p "$dir"
    cat >"$dir/pester-restore.csproj" <<CSPROJ
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><TargetFramework>net10.0</TargetFramework></PropertyGroup>
  <ItemGroup><PackageDownload Include="Pester" Version="[$PB_PESTER_VERSION]" /></ItemGroup>
</Project>
CSPROJ
    pb_log "restoring Pester $PB_PESTER_VERSION from NuGet into $dir/packages"
    dotnet restore "$dir/pester-restore.csproj" --packages "$dir/packages" >&2 ||
      pb_die "dotnet restore of Pester $PB_PESTER_VERSION failed"
  fi
  [[ -f $manifest ]] || pb_die "Pester restored, but $manifest is missing"
  export PB_PESTER=$manifest
}
