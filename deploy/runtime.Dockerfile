# syntax=docker/dockerfile:1
# Clearway's runtime image built from release binaries made on this host, not in a build stage:
# the same runtime stage as deploy/Dockerfile's (the blocks between the "shared runtime" markers
# are identical in both files; scripts/validate-deploy checks it), for machines that build the
# binaries themselves.
#
#   buildah bud --isolation chroot -f deploy/runtime.Dockerfile -t clearway:local deploy
#   docker build -f deploy/runtime.Dockerfile -t clearway:local deploy
#
# Build context: the deploy/ folder, with deploy/context/ filled first (deploy/context/README.md):
#   context/bin/  the release binaries (the seven workers and clearway) and the resource bundles
#                 beside them (*.resources); built with --static-swift-stdlib, or with the Swift
#                 runtime's shared libraries copied into context/lib/
#   context/lib/  librdkafka.so* (2.8.0), and any other shared library the binaries need that
#                 Debian bookworm's packages below do not provide
# The image's last step fails the build if any binary still lacks a shared library.

# ---- shared runtime: head (identical in deploy/Dockerfile and deploy/runtime.Dockerfile) ----
FROM debian:bookworm-slim AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The runtime libraries only (what ldd lists for the release binaries and librdkafka), tzdata and
# CA certificates. Versions come from the base image's Debian release (bookworm), which pins them.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      ca-certificates tzdata libjemalloc2 libsqlite3-0 libssl3 libsasl2-2 libzstd1 liblz4-1 zlib1g \
      libstdc++6 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 clearway \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/clearway --no-create-home \
      --shell /usr/sbin/nologin clearway \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/clearway
# ---- end of shared runtime: head ----

# The binaries (and the resource bundles Bundle.module looks for beside them) and librdkafka.
COPY context/bin/ /usr/local/bin/
COPY context/lib/ /usr/local/lib/
COPY --chmod=0755 clearway-entrypoint /usr/local/bin/clearway-entrypoint

# ---- shared runtime: tail (identical in deploy/Dockerfile and deploy/runtime.Dockerfile) ----
# Every shared library each binary needs must resolve here: a missing one fails the build, not
# the first start of a worker.
RUN ldconfig \
 && missing=$(for file in /usr/local/bin/* /usr/local/lib/*.so*; do \
      if [ -f "$file" ]; then \
        { ldd "$file" 2>/dev/null || true; } | sed -n "s|^\(.*not found\)|$file: \1|p"; \
      fi; \
    done) \
 && if [ -n "$missing" ]; then echo "missing shared libraries:" >&2; echo "$missing" >&2; exit 1; fi \
 && /usr/local/bin/clearway-entrypoint help >/dev/null
WORKDIR /var/lib/clearway
USER 10001:10001
VOLUME ["/var/lib/clearway"]
# The workers' default HTTP ports (/metrics, /healthz, /readyz): enricher 9101, pga-router 9102,
# aggregator 9103, structuring 9104, manifest-builder 9105, filer-sim 9106, erp-writeback 9107.
EXPOSE 9101 9102 9103 9104 9105 9106 9107
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/clearway-entrypoint", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/clearway-entrypoint"]
CMD ["help"]
# ---- end of shared runtime: tail ----
