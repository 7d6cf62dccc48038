# syntax=docker/dockerfile:1
# twitch-colorchanger in a FROM scratch image: one static binary, a CA bundle, nothing else.
#
#   docker build -t twitch-colorchanger .                       # builds the binary here
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7,linux/arm/v6 -t NAME .
#   docker build --build-arg BINARIES=prebuilt -t twitch-colorchanger .
#       takes dist/<platform>/twitch-colorchanger and dist/ca-certificates.crt from
#       packaging/build-static.sh instead of compiling (no base image needed; that is how
#       packaging/verify.sh builds it with buildah, which also needs
#       --build-arg TARGETPLATFORM=linux/amd64).
#
# The default stage is the last one, `runtime`. Only the stages it needs are built: with
# BINARIES=prebuilt the rust image is never pulled.

# built: compile in the `builder` stage; prebuilt: take the binaries from dist/.
ARG BINARIES=built
ARG RUST_IMAGE=rust:1-bookworm

# Runs on the build machine's own platform and cross-compiles with zig, so multi-arch builds
# need no emulation.
FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS builder
ARG TARGETPLATFORM
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY tests/fake-twitch ./tests/fake-twitch
COPY packaging/build-static.sh ./packaging/
RUN set -eu; \
    case "$TARGETPLATFORM" in \
        linux/amd64) target=x86_64-unknown-linux-musl ;; \
        linux/arm64) target=aarch64-unknown-linux-musl ;; \
        linux/arm/v7) target=armv7-unknown-linux-musleabihf ;; \
        linux/arm/v6) target=arm-unknown-linux-musleabihf ;; \
        *) echo "no musl target for $TARGETPLATFORM" >&2; exit 1 ;; \
    esac; \
    bash packaging/build-static.sh "$target"; \
    mkdir -p /files/image-root; \
    cp "dist/$target/twitch-colorchanger" /files/twitch-colorchanger; \
    cp dist/ca-certificates.crt /files/ca-certificates.crt; \
    cp -a dist/image-root/config /files/image-root/config

FROM scratch AS files-built
COPY --from=builder /files/ /

FROM scratch AS files-prebuilt
ARG TARGETPLATFORM
COPY dist/${TARGETPLATFORM}/twitch-colorchanger /twitch-colorchanger
COPY dist/ca-certificates.crt /ca-certificates.crt
COPY dist/image-root/ /image-root/

FROM files-${BINARIES} AS files

FROM scratch AS runtime
COPY --from=files /twitch-colorchanger /twitch-colorchanger
COPY --from=files /ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# /config belongs to the unprivileged user: the daemon rewrites its config there when
# tokens rotate (atomically, through a temp file in the same directory).
COPY --from=files --chown=10001:10001 /image-root/ /
ENV TWITCH_CONF_FILE=/config/twitch_colorchanger.conf \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 10001:10001
VOLUME /config
HEALTHCHECK --interval=1m --timeout=10s --start-period=30s --retries=3 \
    CMD ["/twitch-colorchanger", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/twitch-colorchanger"]
CMD ["run"]
