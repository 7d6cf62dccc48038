#!/usr/bin/env bash
# Builds fully static musl binaries of twitch-colorchanger (OpenSSL vendored and linked in)
# for the machines our users run it on: x86_64 PCs and NAS devices, 64-bit ARM (aarch64),
# 32-bit ARMv7 (hard float) and ARMv6 (hard float: Raspberry Pi Zero and 1, and every
# Raspberry Pi OS armhf system, since Raspberry Pi OS builds armhf for ARMv6). Installs what
# it needs itself: rustup targets, zig from the Python registry (as the cross C compiler and
# linker, in a venv), cargo-zigbuild, and, where rustup serves no prebuilt std for 32-bit ARM
# musl, nightly with rust-src to build std.
#
# Usage: packaging/build-static.sh [TARGET...]      (default: all four targets)
#
# Output, in dist/ at the repository root:
#   dist/<target>/twitch-colorchanger                           one binary per target
#   dist/linux/{amd64,arm64,arm/v7,arm/v6}/twitch-colorchanger  the same, by Docker platform
#   dist/ca-certificates.crt                                    CA bundle for the scratch image
#   dist/image-root/config/                                     empty /config for the image
#
# Cargo builds into $CARGO_TARGET_DIR (default: target). Set it elsewhere (for example
# CARGO_TARGET_DIR=/work/target-pkg) to keep these builds out of the way of test builds.
set -euo pipefail

cd "$(dirname "$0")/.."
repo_root=$(pwd)

# Versions known to work together here; newer ones are likely fine but untested.
ZIGLANG_VERSION=${ZIGLANG_VERSION:-0.15.2}
CARGO_ZIGBUILD_VERSION=${CARGO_ZIGBUILD_VERSION:-0.24.1}

all_targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf
    arm-unknown-linux-musleabihf)
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=("${all_targets[@]}")
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
mkdir -p "$CARGO_TARGET_DIR"
CARGO_TARGET_DIR=$(cd "$CARGO_TARGET_DIR" && pwd)
# The venv holding zig lives next to the build it serves, so `cargo clean` removes it.
zig_venv=${ZIG_VENV:-$CARGO_TARGET_DIR/zig-venv}

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'build-static: %s\n' "$*" >&2
    exit 1
}

# Installs Debian packages; elsewhere it can only say what is missing.
apt_updated=no
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "missing: $* (install it with your package manager)"
    [ "$(id -u)" -eq 0 ] || die "missing: $* (apt-get install needs root)"
    if [ "$apt_updated" = no ]; then
        say "apt-get update"
        apt-get update -qq
        apt_updated=yes
    fi
    say "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need_command() {
    command -v "$1" >/dev/null 2>&1 || apt_install "$2"
}

docker_platform_for() {
    case "$1" in
        x86_64-unknown-linux-musl) echo linux/amd64 ;;
        aarch64-unknown-linux-musl) echo linux/arm64 ;;
        armv7-unknown-linux-musleabihf) echo linux/arm/v7 ;;
        arm-unknown-linux-musleabihf) echo linux/arm/v6 ;;
        *) die "unknown target $1 (known: ${all_targets[*]})" ;;
    esac
}

for target in "${targets[@]}"; do
    docker_platform_for "$target" >/dev/null
done

# OpenSSL's build needs perl and make; zig comes from pip, in a venv.
need_command perl perl
need_command make make
need_command cc gcc
need_command python3 python3
command -v rustup >/dev/null 2>&1 || die "rustup is missing: see https://rustup.rs"

if ! "$zig_venv/bin/python3" -c "import ziglang" 2>/dev/null; then
    say "installing zig (ziglang $ZIGLANG_VERSION from the Python registry) into $zig_venv"
    rm -rf "$zig_venv"
    # Debian's python3 makes venvs only with python3-venv installed.
    python3 -m venv "$zig_venv" 2>/dev/null || {
        rm -rf "$zig_venv"
        apt_install python3-venv
        python3 -m venv "$zig_venv"
    }
    "$zig_venv/bin/pip" install --quiet --disable-pip-version-check "ziglang==$ZIGLANG_VERSION"
fi
# cargo-zigbuild runs `python3 -m ziglang` when no `zig` is on PATH: the venv's python3
# must come first.
export PATH="$zig_venv/bin:$HOME/.cargo/bin:$PATH"

if ! cargo-zigbuild --version 2>/dev/null | grep -qw "$CARGO_ZIGBUILD_VERSION"; then
    say "installing cargo-zigbuild $CARGO_ZIGBUILD_VERSION"
    cargo install --locked --quiet --version "$CARGO_ZIGBUILD_VERSION" cargo-zigbuild
fi

# OpenSSL, compiled from source by the `vendored-openssl` feature, is most of each binary.
# openssl-src configures it without SSLv3, engines, the legacy provider, compression,
# Camellia, IDEA and SEED; these options leave out the rest of what a TLS 1.2/1.3 client of
# Twitch never uses. Kept: TLS 1.2 and 1.3, ECDHE over X25519 and P-256/384/521 (and the
# X25519MLKEM768 hybrid), finite-field DH, RSA, RSA-PSS and ECDSA certificates, AES-GCM/CBC,
# ChaCha20-Poly1305, SHA-1/SHA-2/SHA-3, HKDF, X.509 and PEM CA bundles and hashed
# directories, and the error strings our logs show.
openssl_options=(
    # Protocols and services: TLS 1.0/1.1, DTLS and QUIC, SRP, SRTP, NPN (ALPN stays),
    # OCSP and its HTTP client, Certificate Transparency, CMS, CMP, time stamps.
    no-tls1 no-tls1_1 no-dtls no-quic no-srp no-srtp no-nextprotoneg
    no-http no-ocsp no-ct no-cms no-cmp no-ts
    # Algorithms in no TLS 1.2/1.3 cipher suite, group or signature scheme.
    no-des no-rc2 no-rc4 no-bf no-cast no-aria no-sm2 no-sm3 no-sm4 no-gost
    no-md4 no-mdc2 no-rmd160 no-whirlpool no-blake2 no-siphash no-scrypt
    no-ocb no-siv no-ec2m no-dsa no-ml-dsa no-slh-dsa no-lms
    # OpenSSL's own flags ask for -O3; the Rust code is optimised for size ("s") too.
    -Os
)
# openssl-src runs `perl ./Configure …`; OPENSSL_SRC_PERL points it at this wrapper, which
# adds the options. The options are not part of cargo's fingerprint, so a change to them
# rebuilds openssl-sys explicitly (see the stamp below).
openssl_perl="$CARGO_TARGET_DIR/openssl-configure-perl"
{
    echo '#!/bin/sh'
    echo '# Written by packaging/build-static.sh; openssl-src runs it as perl (OPENSSL_SRC_PERL).'
    printf 'exec perl "$@"'
    printf ' %q' "${openssl_options[@]}"
    echo
} >"$openssl_perl.new"
chmod 755 "$openssl_perl.new"
mv "$openssl_perl.new" "$openssl_perl"
export OPENSSL_SRC_PERL="$openssl_perl"

rm -rf dist/image-root
mkdir -p dist/image-root/config
chmod 0700 dist/image-root/config
ca_bundle=/etc/ssl/certs/ca-certificates.crt
if [ ! -s "$ca_bundle" ]; then
    need_command update-ca-certificates ca-certificates
fi
[ -s "$ca_bundle" ] || die "no CA bundle at $ca_bundle"
cp "$ca_bundle" dist/ca-certificates.crt

for target in "${targets[@]}"; do
    # 32-bit ARM musl has no prebuilt std on some rustup mirrors: build std from source with
    # nightly then, and let zig's musl provide the C runtime (the self-contained one comes
    # only with the prebuilt std).
    toolchain=()
    extra=()
    rustflags=${RUSTFLAGS:-}
    if ! rustup target list --installed | grep -qx "$target"; then
        say "rustup target add $target"
        if ! RUST_BACKTRACE=0 rustup target add "$target" >&2; then
            case "$target" in
                arm*-unknown-linux-musleabihf) ;;
                *) die "rustup has no std for $target" ;;
            esac
            say "no prebuilt std for $target: building std from source with nightly"
            # An installed nightly is used as it is: updating it would change the machine's
            # toolchain under other work.
            if rustup toolchain list | grep -q '^nightly-'; then
                rustup component add --toolchain nightly rust-src >&2
            else
                rustup toolchain install nightly --profile minimal --component rust-src >&2
            fi
            toolchain=(+nightly)
            extra=("-Zbuild-std=std,panic_abort")
            # The linker notes that the (absent) prebuilt std directory is missing; that is
            # expected here.
            rustflags="$rustflags -C link-self-contained=no -A linker_messages"
        fi
    fi
    stamp="$CARGO_TARGET_DIR/$target/openssl-options"
    if [ "$(cat "$stamp" 2>/dev/null)" != "${openssl_options[*]}" ]; then
        say "OpenSSL options changed for $target: rebuilding OpenSSL"
        # This target's openssl-sys only: `cargo clean --package` would also remove the
        # build script that every target shares, and so rebuild OpenSSL for all of them.
        rm -rf "$CARGO_TARGET_DIR/$target"/release/build/openssl-sys-* \
            "$CARGO_TARGET_DIR/$target"/release/.fingerprint/openssl-sys-*
    fi
    say "building $target"
    RUSTFLAGS="$rustflags" cargo "${toolchain[@]}" zigbuild --release --locked \
        --package twitch-colorchanger --bin twitch-colorchanger \
        --features vendored-openssl --target "$target" "${extra[@]}"
    binary="$CARGO_TARGET_DIR/$target/release/twitch-colorchanger"
    [ -x "$binary" ] || die "cargo built no $binary"
    # The options reached Configure only if OpenSSL's configuration says so.
    openssl_conf=$(ls -t "$CARGO_TARGET_DIR/$target"/release/build/openssl-sys-*/out/openssl-build/install/include/openssl/configuration.h | head -n 1)
    grep -q '^# *define OPENSSL_NO_QUIC$' "$openssl_conf" ||
        die "OpenSSL for $target was configured without our options (see $openssl_conf)"
    printf '%s\n' "${openssl_options[*]}" >"$stamp"
    mkdir -p "dist/$target" "dist/$(docker_platform_for "$target")"
    cp "$binary" "dist/$target/twitch-colorchanger"
    cp "$binary" "dist/$(docker_platform_for "$target")/twitch-colorchanger"
    say "dist/$target/twitch-colorchanger: $(stat -c %s "$binary") bytes"
done

say "done: binaries in $repo_root/dist"
