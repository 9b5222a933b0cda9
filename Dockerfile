# The faultline node image: the bundled store-and-mesh service (dist/node.mjs, made by `npm run build`)
# on Debian bookworm with Node 24, plus the tools the nemeses exec inside the container: iptables and
# iproute2 (partitions), libfaketime (clock skew), procps (ps, kill) and fuse3 (the disk layer). The harness builds it with
# harness/image.ts; BASE_IMAGE is the official node:24-bookworm-slim where it can be pulled, else the
# offline equivalent made by harness/docker/build-base.sh, which already contains those tools.
#
# The delay fault (nemesis/delay.ts) needs faultline-delay, a small C program that holds packets
# queued to it by an iptables NFQUEUE rule: it is compiled in a build stage with libnetfilter-queue's
# headers, and only the program and the runtime library (libnetfilter-queue1) go into the node image.
ARG BASE_IMAGE=node:24-bookworm-slim

# The disk layer of the `disk` fault package (harness/docker/diskfs.c), compiled against libfuse3 in its
# own stage so the compiler stays out of the node image; only the binary and the runtime library ship.
FROM ${BASE_IMAGE} AS diskfs
RUN set -eu; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev libfuse3-dev pkg-config
COPY harness/docker/diskfs.c /src/diskfs.c
RUN gcc -O2 -Wall -Wextra -Werror -o /faultline-diskfs /src/diskfs.c $(pkg-config --cflags --libs fuse3) -lpthread

# The delay fault's packet holder (harness/docker/faultline-delay.c), compiled against libnetfilter-queue
# in its own stage, likewise.
FROM ${BASE_IMAGE} AS delay-build
RUN set -eu; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev libnetfilter-queue-dev libnfnetlink-dev; \
    rm -rf /var/lib/apt/lists/*
COPY harness/docker/faultline-delay.c /src/faultline-delay.c
RUN gcc -O2 -Wall -Wextra -Werror -o /faultline-delay /src/faultline-delay.c -lnetfilter_queue -lnfnetlink

FROM ${BASE_IMAGE}

# Install only what is missing, so the offline base (which has everything) needs no network here.
# The libfaketime path depends on the architecture; a fixed symlink lets the entrypoint stay simple.
RUN set -eu; \
    pkgs="iptables iproute2 libfaketime procps fuse3 libnetfilter-queue1"; \
    if ! dpkg -s $pkgs >/dev/null 2>&1; then \
      apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    lib="$(dpkg -L libfaketime | grep '/faketime/libfaketime.so.1$')"; \
    mkdir -p /usr/local/lib/faultline /var/lib/faultline /data; \
    ln -sf "$lib" /usr/local/lib/faultline/libfaketime.so.1; \
    node --version

COPY --from=diskfs /faultline-diskfs /usr/local/bin/faultline-diskfs
COPY --from=delay-build /faultline-delay /usr/local/bin/faultline-delay
COPY harness/docker/entrypoint.sh /usr/local/bin/faultline-entrypoint
COPY dist/node.mjs /opt/faultline/node.mjs

ENV FAULTLINE_LISTEN=0.0.0.0:7000 \
    FAULTLINE_DATA_DIR=/data
EXPOSE 7000
WORKDIR /data
ENTRYPOINT ["/usr/local/bin/faultline-entrypoint"]
