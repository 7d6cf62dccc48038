#!/usr/bin/env bash
# Builds every release artifact of twitch-colorchanger and checks it the way a user's machine
# would use it, failing loudly on the first problem:
#
#   1. static musl binaries (packaging/build-static.sh): `file` says statically linked; each
#      runs `--version` and `check` in an empty root holding only itself and a config (the ARM
#      ones under qemu-user, copied into that root; the ARMv6 one on an emulated ARM1176, the
#      Raspberry Pi Zero's and 1's CPU, where the ARMv7 one must fail);
#   2. TLS trust of each static binary: inside such a root, with a CA bundle at each usual
#      place (or none), and with SSL_CERT_FILE / SSL_CERT_DIR, it connects to a local TLS
#      server whose certificate only that bundle vouches for;
#   3. .deb and .rpm packages (packaging/build-packages.sh): file lists, control data,
#      maintainer scripts and dependencies, and which binary each carries (armhf .deb: the
#      ARMv6 one; armv7hl .rpm: the ARMv7 one); the amd64 .deb and the x86_64 .rpm are
#      installed into throwaway roots (dpkg --root, rpm --root) and run `--version`, and the
#      .deb purges cleanly;
#   4. the systemd unit: `systemd-analyze verify`, and `systemd-analyze security` exposure;
#   5. the FROM scratch image, built with buildah from dist/ (BINARIES=prebuilt): runs
#      `--version`, runs as UID 10001 (which cannot read a root-only file), owns /config; and
#      the image for each other platform of the release (arm64, arm/v7, arm/v6) carries that
#      platform's binary and says its architecture.
#
# Needs root (apt-get, chroot, buildah) and the package registries; installs the rest itself.
# Not part of .ci/run: the first run takes a long while (OpenSSL is compiled per target).
#
# Usage: packaging/verify.sh          (CARGO_TARGET_DIR as for packaging/build-static.sh)
set -euo pipefail

cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
mkdir -p "$CARGO_TARGET_DIR"
CARGO_TARGET_DIR=$(cd "$CARGO_TARGET_DIR" && pwd)
export PATH="$HOME/.cargo/bin:$PATH"

targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf
    arm-unknown-linux-musleabihf)
summary=()

say() { printf '\n==> %s\n' "$*" >&2; }
pass() {
    printf 'PASS  %s\n' "$*" >&2
    summary+=("PASS  $*")
}
die() {
    printf 'FAIL  %s\n' "$*" >&2
    exit 1
}

work=$(mktemp -d /tmp/twitch-colorchanger-verify.XXXXXX)
buildah_storage=(--root "$work/containers/root" --runroot "$work/containers/run" --storage-driver vfs)
cleanup() {
    # A daemon left running by a failed check lives in a root under $work: end it by its id.
    local proc
    for proc in /proc/[0-9]*; do
        case "$(readlink "$proc/root" 2>/dev/null)" in
            "$work"/*) kill -KILL "${proc#/proc/}" 2>/dev/null || true ;;
        esac
    done
    if command -v buildah >/dev/null 2>&1 && [ -d "$work/containers" ]; then
        buildah "${buildah_storage[@]}" rm --all >/dev/null 2>&1 || true
        buildah "${buildah_storage[@]}" rmi --all --force >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || die "run me as root: I install packages, chroot and run buildah"

say "installing tools"
declare -A package_of=(
    [file]=file [rpm]=rpm [rpm2cpio]=rpm2cpio [cpio]=cpio [qemu-aarch64-static]=qemu-user-static
    [qemu-arm-static]=qemu-user-static [buildah]=buildah [systemd-analyze]=systemd
    [openssl]=openssl [python3]=python3 [dpkg-deb]=dpkg [chroot]=coreutils
)
missing=()
for command in "${!package_of[@]}"; do
    command -v "$command" >/dev/null 2>&1 || missing+=("${package_of[$command]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
pass "tools installed"

say "building the static binaries"
bash packaging/build-static.sh "${targets[@]}"

qemu_for() {
    case "$1" in
        x86_64-*) echo "" ;;
        aarch64-*) command -v qemu-aarch64-static ;;
        arm*) command -v qemu-arm-static ;;
    esac
}
# The CPU qemu-user emulates: for the ARMv6 binary the Pi Zero's and Pi 1's ARM1176 (ARMv6 +
# VFPv2), which traps any ARMv7 instruction; otherwise qemu's default, the newest it knows.
qemu_cpu_for() {
    case "$1" in
        arm-*) echo arm1176 ;;
        *) echo "" ;;
    esac
}

# A config the binary accepts; nothing in it is a real secret.
write_config() {
    cat >"$1" <<'EOF'
{
  "users": [
    {
      "username": "verify_user",
      "client_id": "verifyclientid0000000000000000",
      "client_secret": "",
      "access_token": "verifyaccesstoken00000000000000",
      "refresh_token": "",
      "channels": ["verify_user"]
    }
  ]
}
EOF
}

# Makes an empty root at $1 holding only the binary of target $2 (or, with a third argument,
# of that target instead), its qemu (for ARM) and /c.json.
make_root() {
    local root=$1 target=$2 binary_target=${3:-$2} qemu
    rm -rf "$root"
    mkdir -p "$root"
    cp "dist/$binary_target/twitch-colorchanger" "$root/twitch-colorchanger"
    qemu=$(qemu_for "$target")
    [ -z "$qemu" ] || cp "$qemu" "$root/qemu"
    write_config "$root/c.json"
}

# Sets root_command to the command that runs the binary inside root $1 (through its qemu for
# ARM, emulating target $2's CPU). Callers run it as `env -i [VAR=VALUE...]
# "${root_command[@]}" ARGS`, so the binary sees a clean environment and, started in the
# background, is the process $! names.
set_root_command() {
    local cpu
    root_command=("$(command -v chroot)" "$1")
    if [ -e "$1/qemu" ]; then
        root_command+=(/qemu)
        cpu=$(qemu_cpu_for "$2")
        [ -z "$cpu" ] || root_command+=(-cpu "$cpu")
    fi
    root_command+=(/twitch-colorchanger)
}

say "checking the static binaries"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
for target in "${targets[@]}"; do
    binary="dist/$target/twitch-colorchanger"
    description=$(file -b "$binary")
    case "$description" in
        *dynamically*) die "$binary is dynamically linked: $description" ;;
        *"statically linked"* | *"static-pie linked"*) pass "$target: file says: $description" ;;
        *) die "$binary: file says neither static nor dynamic: $description" ;;
    esac
    root="$work/root-$target"
    make_root "$root" "$target"
    contents=$(cd "$root" && find . -mindepth 1 | sort | tr '\n' ' ')
    set_root_command "$root" "$target"
    cpu=$(qemu_cpu_for "$target")
    output=$(env -i "${root_command[@]}" --version) || die "$target: --version failed in an empty root"
    [ "$output" = "twitch-colorchanger $version" ] || die "$target: --version printed: $output"
    output=$(env -i "${root_command[@]}" check --config /c.json) || die "$target: check failed in an empty root: $output"
    grep -q "1 user OK" <<<"$output" || die "$target: check printed: $output"
    pass "$target: --version and check run${cpu:+ on an emulated $cpu} in an empty root holding only: $contents"
done
# Control: the emulated ARM1176 really refuses ARMv7 code, so the ARMv6 binary's runs above
# prove it has none.
root="$work/root-armv7-on-arm1176"
make_root "$root" arm-unknown-linux-musleabihf armv7-unknown-linux-musleabihf
set_root_command "$root" arm-unknown-linux-musleabihf
if output=$(env -i "${root_command[@]}" check --config /c.json 2>&1); then
    die "the ARMv7 binary ran on an emulated ARM1176: the ARMv6 check proves nothing ($output)"
fi
pass "control: the ARMv7 binary fails on an emulated ARM1176 ($(tail -n 1 <<<"$output"))"

say "checking TLS trust (a local TLS server, the static binary in an empty root)"
tls="$work/tls"
mkdir -p "$tls"
openssl_quiet() { openssl "$@" >/dev/null 2>&1; }
openssl_quiet req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=twitch-colorchanger verify CA" -keyout "$tls/ca.key" -out "$tls/ca.pem"
openssl_quiet req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=some other CA" -keyout "$tls/other.key" -out "$tls/other.pem"
openssl_quiet req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=127.0.0.1" -keyout "$tls/server.key" -out "$tls/server.csr"
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$tls/server.ext"
openssl_quiet x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
    -CAcreateserial -days 2 -extfile "$tls/server.ext" -out "$tls/server.pem"
ca_hash=$(openssl x509 -hash -noout -in "$tls/ca.pem")
other_hash=$(openssl x509 -hash -noout -in "$tls/other.pem")
cat >"$tls/server.py" <<'EOF'
# Accepts one TLS connection on 127.0.0.1 (port printed first) and prints whether the
# client completed the handshake, i.e. trusted the certificate.
import socket, ssl, sys

context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
listener.settimeout(30)
print(listener.getsockname()[1], flush=True)
try:
    connection, _ = listener.accept()
except socket.timeout:
    print("no connection", flush=True)
    sys.exit(0)
connection.settimeout(30)
try:
    context.wrap_socket(connection, server_side=True).close()
    print("handshake ok", flush=True)
except (ssl.SSLError, OSError) as error:
    print("handshake failed:", getattr(error, "reason", None) or error, flush=True)
EOF

# One scenario: `trust_case TARGET NAME EXPECTED SETUP [VAR=VALUE...]`, where SETUP places
# bundles in the root ("path=file,path=file" with file ca or other, or "-") and EXPECTED is
# ok or failed.
trust_case() {
    local target=$1 name=$2 expected=$3 setup=$4
    shift 4
    local root="$work/trust-root" out="$work/trust-server.out" log="$work/trust-daemon.log"
    make_root "$root" "$target"
    if [ "$setup" != - ]; then
        local placement path source
        IFS=, read -r -a placements <<<"$setup"
        for placement in "${placements[@]}"; do
            path=${placement%%=*}
            source=${placement#*=}
            mkdir -p "$root$(dirname "$path")"
            cp "$tls/$source.pem" "$root$path"
        done
    fi
    : >"$out"
    python3 "$tls/server.py" "$tls/server.pem" "$tls/server.key" >"$out" &
    local server_pid=$! n_waits=0
    until [ -s "$out" ]; do
        n_waits=$((n_waits + 1))
        [ "$n_waits" -le 100 ] || die "the TLS test server did not start"
        sleep 0.1
    done
    local port
    port=$(head -n 1 "$out")
    local url="127.0.0.1:$port"
    set_root_command "$root" "$target"
    env -i "$@" TWITCH_IRC_URL="wss://$url" TWITCH_API_URL="https://$url" \
        TWITCH_AUTH_URL="https://$url" LOG_LEVEL=debug "${root_command[@]}" run --config /c.json >"$log" 2>&1 &
    local daemon_pid=$!
    wait "$server_pid" || true
    # SIGTERM must end the daemon, cleanly, within its two-second grace.
    kill -TERM "$daemon_pid" 2>/dev/null || true
    n_waits=0
    while kill -0 "$daemon_pid" 2>/dev/null && [ "$n_waits" -lt 50 ]; do
        n_waits=$((n_waits + 1))
        sleep 0.1
    done
    if kill -0 "$daemon_pid" 2>/dev/null; then
        kill -KILL "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" || true
        cat "$log" >&2
        die "$target: TLS trust, $name: the daemon ignored SIGTERM for 5 seconds"
    fi
    local status=0 stopped
    wait "$daemon_pid" || status=$?
    case "$status" in
        0) stopped="exit 0 on SIGTERM" ;;
        *)
            cat "$log" >&2
            die "$target: TLS trust, $name: the daemon exited $status after SIGTERM"
            ;;
    esac
    local outcome
    outcome=$(sed -n 2p "$out")
    case "$outcome" in
        "handshake $expected"*) pass "$target: TLS trust, $name: $outcome ($stopped)" ;;
        *)
            cat "$log" >&2
            die "$target: TLS trust, $name: expected handshake $expected, got: $outcome"
            ;;
    esac
}

for target in "${targets[@]}"; do
    trust_case "$target" "no CA bundle anywhere (control)" failed -
    trust_case "$target" "Debian/Ubuntu/Unraid bundle" ok /etc/ssl/certs/ca-certificates.crt=ca
    trust_case "$target" "Fedora/RHEL bundle" ok /etc/pki/tls/certs/ca-bundle.crt=ca
    trust_case "$target" "RHEL/CentOS extracted bundle" ok /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem=ca
    trust_case "$target" "openSUSE bundle" ok /etc/ssl/ca-bundle.pem=ca
    trust_case "$target" "Alpine bundle" ok /etc/ssl/cert.pem=ca
    trust_case "$target" "Entware (NAS) bundle" ok /opt/etc/ssl/certs/ca-certificates.crt=ca
    trust_case "$target" "SSL_CERT_FILE" ok /nas/ca.pem=ca SSL_CERT_FILE=/nas/ca.pem
    trust_case "$target" "SSL_CERT_FILE next to another system bundle" ok \
        /etc/ssl/certs/ca-certificates.crt=other,/nas/ca.pem=ca SSL_CERT_FILE=/nas/ca.pem
    trust_case "$target" "SSL_CERT_FILE pointing nowhere, system bundle present" ok \
        /etc/ssl/certs/ca-certificates.crt=ca SSL_CERT_FILE=/nowhere.pem
    trust_case "$target" "SSL_CERT_DIR (hashed)" ok "/nas/certs/$ca_hash.0=ca" SSL_CERT_DIR=/nas/certs
    trust_case "$target" "only some other CA (control)" failed /etc/ssl/certs/ca-certificates.crt=other
    trust_case "$target" "hashed /etc/ssl/certs, no bundle" ok "/etc/ssl/certs/$ca_hash.0=ca"
    trust_case "$target" "hashed /etc/ssl/certs with another CA only (control)" failed \
        "/etc/ssl/certs/$other_hash.0=other"
done

say "building and checking the .deb and .rpm packages"
# Which binary each package must carry (packaging/build-packages.sh says why).
declare -A deb_from=([amd64]=x86_64-unknown-linux-musl [arm64]=aarch64-unknown-linux-musl
    [armhf]=arm-unknown-linux-musleabihf)
declare -A rpm_from=([x86_64]=x86_64-unknown-linux-musl [aarch64]=aarch64-unknown-linux-musl
    [armv7hl]=armv7-unknown-linux-musleabihf)
expected_files="/usr/bin/twitch-colorchanger
/usr/lib/systemd/system/twitch-colorchanger.service
/usr/share/doc/twitch-colorchanger/CHANGELOG.md
/usr/share/doc/twitch-colorchanger/README.md
/usr/share/doc/twitch-colorchanger/config.example.json"
rm -rf dist/packages
bash packaging/build-packages.sh "${targets[@]}"
n_debs=$(find dist/packages -name '*.deb' | wc -l)
[ "$n_debs" -eq "${#deb_from[@]}" ] || die "expected ${#deb_from[@]} .deb packages, got $n_debs: $(ls dist/packages)"
n_rpms=$(find dist/packages -name '*.rpm' | wc -l)
[ "$n_rpms" -eq "${#rpm_from[@]}" ] || die "expected ${#rpm_from[@]} .rpm packages, got $n_rpms: $(ls dist/packages)"
for arch in "${!deb_from[@]}"; do
    deb=$(ls dist/packages/twitch-colorchanger_*_"$arch".deb) || die "no $arch .deb"
    [ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || die "$deb: Architecture is not $arch"
    # A usrmerged system and cargo-deb's older layout both put units under lib/systemd.
    deb_files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print substr($6, 2)}' | sed 's,^/lib/systemd,/usr/lib/systemd,' | sort)
    [ "$deb_files" = "$(printf '%s\n/usr/share/doc/twitch-colorchanger/copyright' "$expected_files" | sort)" ] ||
        die "$deb holds unexpected files: $deb_files"
    control=$(dpkg-deb -f "$deb")
    grep -qx "Depends: ca-certificates" <<<"$control" || die "$deb: unexpected Depends: $control"
    if dpkg-deb --ctrl-tarfile "$deb" | tar -t | grep -q conffiles; then
        die "$deb has conffiles: the config must live in the state directory, not in /etc"
    fi
    scripts="$work/deb-control-$arch"
    dpkg-deb -e "$deb" "$scripts"
    for script in postinst prerm postrm; do
        [ -f "$scripts/$script" ] || die "$deb has no $script (systemd handling is missing)"
        sh -n "$scripts/$script" || die "$deb: $script is not valid sh"
    done
    grep -q "try-restart twitch-colorchanger.service" "$scripts/postinst" ||
        die "$deb: postinst does not restart the service after an upgrade"
    unpacked="$work/deb-files-$arch"
    dpkg-deb -x "$deb" "$unpacked"
    cmp -s "$unpacked/usr/bin/twitch-colorchanger" "dist/${deb_from[$arch]}/twitch-colorchanger" ||
        die "$deb does not carry the ${deb_from[$arch]} binary"
    pass "$(basename "$deb"): the ${deb_from[$arch]} binary, files, Depends: ca-certificates, no conffiles, systemd maintainer scripts"
done
for arch in "${!rpm_from[@]}"; do
    rpm_file=$(ls dist/packages/twitch-colorchanger-*."$arch".rpm) || die "no $arch .rpm"
    [ "$(rpm -qp --queryformat '%{ARCH}' "$rpm_file" 2>/dev/null)" = "$arch" ] || die "$rpm_file: ARCH is not $arch"
    rpm_files=$(rpm -qlp "$rpm_file" 2>/dev/null | sort)
    [ "$rpm_files" = "$(sort <<<"$expected_files")" ] || die "$rpm_file holds unexpected files: $rpm_files"
    requires=$(rpm -qp --requires "$rpm_file" 2>/dev/null)
    if grep -qE 'lib(ssl|crypto|c)\.so' <<<"$requires"; then
        die "$rpm_file requires shared libraries: $requires"
    fi
    unpacked="$work/rpm-files-$arch"
    mkdir -p "$unpacked"
    # Debian 12's rpm2cpio exits 1 even after writing the whole archive; the cmp below is
    # what checks the binary.
    (cd "$unpacked" && { rpm2cpio "$OLDPWD/$rpm_file" || true; } | cpio -idm --quiet)
    cmp -s "$unpacked/usr/bin/twitch-colorchanger" "dist/${rpm_from[$arch]}/twitch-colorchanger" ||
        die "$rpm_file does not carry the ${rpm_from[$arch]} binary"
    pass "$(basename "$rpm_file"): the ${rpm_from[$arch]} binary, files, no shared-library requirements"
done

# Real installs into throwaway roots. dpkg runs the maintainer scripts outside the root with
# DPKG_ROOT set (deb-systemd-helper honours it), so the host is never touched; the missing
# ca-certificates is forced past.
deb_root="$work/deb-root"
mkdir -p "$deb_root/var/lib/dpkg/info" "$deb_root/var/lib/dpkg/updates" "$deb_root/var/lib/dpkg/triggers"
touch "$deb_root/var/lib/dpkg/status"
dpkg --root="$deb_root" --force-depends --force-script-chrootless -i dist/packages/twitch-colorchanger_*_amd64.deb >&2 2>"$work/dpkg.log" ||
    die "dpkg could not install the .deb into a throwaway root: $(cat "$work/dpkg.log")"
output=$("$deb_root/usr/bin/twitch-colorchanger" --version)
[ "$output" = "twitch-colorchanger $version" ] || die "the installed .deb's binary printed: $output"
pass "amd64 .deb installed with dpkg --root into a throwaway root (maintainer scripts ran), runs: $output"
rpm_root="$work/rpm-root"
mkdir -p "$rpm_root"
rpm --root "$rpm_root" --initdb
rpm --root "$rpm_root" -i --nodeps --noscripts --nosignature dist/packages/twitch-colorchanger-*.x86_64.rpm 2>/dev/null ||
    die "rpm could not install the .rpm into a throwaway root"
output=$("$rpm_root/usr/bin/twitch-colorchanger" --version)
[ "$output" = "twitch-colorchanger $version" ] || die "the installed .rpm's binary printed: $output"
pass "x86_64 .rpm installed with rpm --root into a throwaway root, runs: $output"

say "checking the systemd unit"
# systemd-analyze verify needs the binary the unit starts and the standard units: give it
# the unpacked .deb plus this host's units, without touching the host.
unit_dir=$(dirname "$(find "$deb_root" -name twitch-colorchanger.service)")
cp -an /usr/lib/systemd/system/. "$unit_dir/"
verify_output=$(systemd-analyze verify --root="$deb_root" twitch-colorchanger.service 2>&1) ||
    die "systemd-analyze verify failed: $verify_output"
[ -z "$verify_output" ] || die "systemd-analyze verify complained: $verify_output"
pass "systemd-analyze verify: no complaints"
exposure=$(systemd-analyze security --offline=true --root="$deb_root" twitch-colorchanger.service 2>&1 |
    sed -n 's/.*Overall exposure level for twitch-colorchanger.service: //p')
[ -n "$exposure" ] || die "systemd-analyze security printed no exposure level"
pass "systemd-analyze security: exposure $exposure"
dpkg --root="$deb_root" --force-script-chrootless --purge twitch-colorchanger >/dev/null 2>"$work/dpkg.log" ||
    die "dpkg could not purge the package: $(cat "$work/dpkg.log")"
if [ -e "$deb_root/usr/bin/twitch-colorchanger" ] || [ -e "$unit_dir/twitch-colorchanger.service" ]; then
    die "purging the .deb left its files behind"
fi
pass "the .deb purges cleanly (maintainer scripts ran)"

say "building and checking the container image (buildah, FROM scratch, BINARIES=prebuilt)"
image=localhost/twitch-colorchanger:verify
buildah "${buildah_storage[@]}" bud --isolation chroot --format docker --quiet \
    --build-arg BINARIES=prebuilt --build-arg TARGETPLATFORM=linux/amd64 -t "$image" . >&2
pass "image builds"
container=$(buildah "${buildah_storage[@]}" from "$image")
run_in_image() { buildah "${buildah_storage[@]}" run --isolation chroot "$container" "$@"; }
user=$(buildah "${buildah_storage[@]}" inspect --type image --format '{{.Docker.Config.User}}' "$image")
[ "$user" = "10001:10001" ] || die "the image's user is $user"
mount=$(buildah "${buildah_storage[@]}" mount "$container")
config_owner=$(stat -c '%u:%g %a' "$mount/config")
[ "$config_owner" = "10001:10001 700" ] || die "/config is $config_owner"
binary_owner=$(stat -c '%u:%g %a' "$mount/twitch-colorchanger")
[ "$binary_owner" = "0:0 755" ] || die "/twitch-colorchanger is $binary_owner: its user must not be able to replace it"
root_owner=$(stat -c '%u:%g' "$mount")
[ "$root_owner" = "0:0" ] || die "/ is owned by $root_owner"
# Listed before anything runs in the container: `buildah run` adds its mount points.
image_files=$(cd "$mount" && find . -mindepth 1 | sort | tr '\n' ' ')
buildah "${buildah_storage[@]}" umount "$container" >/dev/null
pass "/config is owned by 10001:10001 with mode 700; the image holds: $image_files"
output=$(run_in_image /twitch-colorchanger --version)
[ "$output" = "twitch-colorchanger $version" ] || die "the image's binary printed: $output"
pass "image runs --version: $output"
# Really not root: the image's user cannot read a root-only file, but reads its own. (Not in
# /config: `buildah run` mounts a fresh volume there.)
write_config "$work/c.json"
buildah "${buildah_storage[@]}" copy --chown 0:0 --chmod 0600 "$container" "$work/c.json" /root-only.json >/dev/null
buildah "${buildah_storage[@]}" copy --chown 10001:10001 --chmod 0600 "$container" "$work/c.json" /user-owned.json >/dev/null
if output=$(run_in_image /twitch-colorchanger check --config /root-only.json 2>&1); then
    die "the image's user read a root-only file: it runs as root ($output)"
fi
grep -qi "permission denied" <<<"$output" || die "reading a root-only file failed for another reason: $output"
output=$(run_in_image /twitch-colorchanger check --config /user-owned.json 2>&1) ||
    die "the image's user cannot read its own file: $output"
pass "image user is $user: a root-only file is 'permission denied', its own file is read"
# Without --config the binary looks where TWITCH_CONF_FILE says.
output=$(run_in_image /twitch-colorchanger check 2>&1) && die "check found a config in an empty /config: $output"
grep -q "/config/twitch_colorchanger.conf" <<<"$output" || die "check without --config did not look in /config: $output"
pass "without --config the image reads /config/twitch_colorchanger.conf (TWITCH_CONF_FILE)"
# The HEALTHCHECK command exists: with no daemon running it reports unhealthy (1), not a
# usage error (2).
status=0
output=$(run_in_image /twitch-colorchanger health 2>&1) || status=$?
if [ "$status" -ne 1 ] || ! grep -q unhealthy <<<"$output"; then
    die "health in the image: exit $status: $output"
fi
pass "HEALTHCHECK command works: with no daemon running, health exits 1 (unhealthy)"
for field in Healthcheck StopSignal Volumes Entrypoint Cmd Env; do
    value=$(buildah "${buildah_storage[@]}" inspect --type image --format "{{.Docker.Config.$field}}" "$image")
    printf '      %s: %s\n' "$field" "$value" >&2
    summary+=("      image $field: $value")
done
image_size=$(buildah "${buildah_storage[@]}" images --format '{{.Size}}' "$image")
# The release's other platforms (the workflow pushes all four as one multi-arch image): the
# same Dockerfile, each with its platform's binary and its OS and architecture in the image
# config. (Debian 12's buildah records every 32-bit ARM image as variant v7, whatever
# --platform says, so the variant is not checked here; buildx in the release sets it.)
for platform in linux/arm64 linux/arm/v7 linux/arm/v6; do
    platform_image="localhost/twitch-colorchanger:verify-${platform//\//-}"
    buildah "${buildah_storage[@]}" bud --isolation chroot --format docker --quiet --platform "$platform" \
        --build-arg BINARIES=prebuilt --build-arg TARGETPLATFORM="$platform" -t "$platform_image" . >&2
    said=$(buildah "${buildah_storage[@]}" inspect --type image \
        --format '{{.Docker.OS}}/{{.Docker.Architecture}}' "$platform_image")
    [ "$said" = "$(cut -d/ -f1,2 <<<"$platform")" ] || die "the $platform image says it is for $said"
    platform_container=$(buildah "${buildah_storage[@]}" from "$platform_image")
    mount=$(buildah "${buildah_storage[@]}" mount "$platform_container")
    cmp -s "$mount/twitch-colorchanger" "dist/$platform/twitch-colorchanger" ||
        die "the $platform image does not carry dist/$platform/twitch-colorchanger"
    buildah "${buildah_storage[@]}" umount "$platform_container" >/dev/null
    pass "$platform image: its platform's binary ($(file -b "dist/$platform/twitch-colorchanger" | cut -d, -f2 | sed 's/^ //'))"
done

say "summary"
printf '%s\n' "${summary[@]}"
echo
echo "sizes (bytes):"
for target in "${targets[@]}"; do
    printf '  %-58s %9s\n' "dist/$target/twitch-colorchanger" "$(stat -c %s "dist/$target/twitch-colorchanger")"
done
for package in dist/packages/*; do
    printf '  %-58s %9s\n' "$package" "$(stat -c %s "$package")"
done
printf '  %-58s %9s\n' "image $image" "$image_size"
echo
echo "verify: all checks passed"
