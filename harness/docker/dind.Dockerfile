# A Docker engine in a container (Docker-in-Docker), for testing faultline's multi-engine mode on one
# machine: Debian's own docker.io package (dockerd, containerd, runc, docker-init) on the base every
# faultline image uses, so it builds offline from the Debian mirror alone. harness/dind.ts builds it
# (faultline-dind:<content hash>) and starts engines from it; each engine keeps its images and
# containers in its own volume at /var/lib/docker (overlay2 on the host's file system).
ARG BASE_IMAGE=node:24-bookworm-slim
FROM ${BASE_IMAGE}
RUN set -eu; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker.io iptables iproute2 procps ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    dockerd --version
VOLUME /var/lib/docker
ENTRYPOINT ["dockerd"]
