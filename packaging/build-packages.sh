#!/usr/bin/env bash
# Builds the .deb and .rpm packages of twitch-colorchanger from the static binaries that
# packaging/build-static.sh left in dist/<target>/, one package per distribution
# architecture:
#
#   target                            .deb     .rpm
#   x86_64-unknown-linux-musl         amd64    x86_64
#   aarch64-unknown-linux-musl        arm64    aarch64
#   arm-unknown-linux-musleabihf      armhf    -         (ARMv6 + VFP: every Raspberry Pi)
#   armv7-unknown-linux-musleabihf    -        armv7hl
#
# Debian's and Raspberry Pi OS's armhf is one architecture for ARMv6 and ARMv7 alike, so the
# armhf .deb carries the ARMv6 binary, which runs on both; Fedora's armv7hl is ARMv7 only.
# Installs cargo-deb and cargo-generate-rpm (from crates.io) if they are missing.
#
# Usage: packaging/build-packages.sh [TARGET...]     (default: every target in dist/)
# Output: dist/packages/*.deb, dist/packages/*.rpm
set -euo pipefail

cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=${CARGO_DEB_VERSION:-3.8.0}
CARGO_GENERATE_RPM_VERSION=${CARGO_GENERATE_RPM_VERSION:-0.21.1}

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'build-packages: %s\n' "$*" >&2
    exit 1
}

deb_arch_of() {
    case "$1" in
        x86_64-unknown-linux-musl) echo amd64 ;;
        aarch64-unknown-linux-musl) echo arm64 ;;
        arm-unknown-linux-musleabihf) echo armhf ;;
        armv7-unknown-linux-musleabihf) echo - ;;
        *) die "unknown target $1" ;;
    esac
}
rpm_arch_of() {
    case "$1" in
        x86_64-unknown-linux-musl) echo x86_64 ;;
        aarch64-unknown-linux-musl) echo aarch64 ;;
        arm-unknown-linux-musleabihf) echo - ;;
        armv7-unknown-linux-musleabihf) echo armv7hl ;;
        *) die "unknown target $1" ;;
    esac
}

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for binary in dist/*-linux-musl*/twitch-colorchanger; do
        [ -e "$binary" ] || continue
        targets+=("$(basename "$(dirname "$binary")")")
    done
    [ "${#targets[@]}" -gt 0 ] || die "no binaries in dist/: run packaging/build-static.sh first"
fi
for target in "${targets[@]}"; do
    deb_arch_of "$target" >/dev/null
    [ -x "dist/$target/twitch-colorchanger" ] ||
        die "no dist/$target/twitch-colorchanger: run packaging/build-static.sh $target first"
done

cargo deb --version 2>/dev/null | grep -qw "$CARGO_DEB_VERSION" || {
    say "installing cargo-deb $CARGO_DEB_VERSION"
    cargo install --locked --quiet --version "$CARGO_DEB_VERSION" cargo-deb
}
cargo generate-rpm --version 2>/dev/null | grep -qw "$CARGO_GENERATE_RPM_VERSION" || {
    say "installing cargo-generate-rpm $CARGO_GENERATE_RPM_VERSION"
    cargo install --locked --quiet --version "$CARGO_GENERATE_RPM_VERSION" cargo-generate-rpm
}

mkdir -p dist/packages
for target in "${targets[@]}"; do
    # Both tools read the binary where `cargo build --target` would leave it; the one in
    # dist/ may come from elsewhere (a CI artifact), so put exactly that one there.
    built="$CARGO_TARGET_DIR/$target/release/twitch-colorchanger"
    if ! cmp -s "dist/$target/twitch-colorchanger" "$built" 2>/dev/null; then
        mkdir -p "$(dirname "$built")"
        cp "dist/$target/twitch-colorchanger" "$built"
    fi
    deb_arch=$(deb_arch_of "$target")
    if [ "$deb_arch" != - ]; then
        rm -f dist/packages/twitch-colorchanger_*_"$deb_arch".deb
        say "building the $deb_arch .deb from $target"
        # Already stripped by the release profile; cargo-deb's strip would need a cross strip.
        cargo deb --no-build --no-strip --target "$target" --output dist/packages/ >&2
        deb=$(ls dist/packages/twitch-colorchanger_*_"$deb_arch".deb 2>/dev/null) ||
            die "cargo deb made no $deb_arch package for $target"
        say "$deb"
    fi
    rpm_arch=$(rpm_arch_of "$target")
    if [ "$rpm_arch" != - ]; then
        rm -f dist/packages/twitch-colorchanger-*."$rpm_arch".rpm
        say "building the $rpm_arch .rpm from $target"
        cargo generate-rpm --target "$target" --arch "$rpm_arch" --output dist/packages/ >&2
        rpm_file=$(ls dist/packages/twitch-colorchanger-*."$rpm_arch".rpm 2>/dev/null) ||
            die "cargo generate-rpm made no $rpm_arch package for $target"
        say "$rpm_file"
    fi
done
