# vipd's container image: a static binary on an empty base (docs/image.md).
#
#   docker build --build-arg VERSION=v0.1.0 --build-arg REVISION=$(git rev-parse HEAD) -t "$(cat deploy/IMAGE)" .
#   docker run --rm --network host --cap-drop ALL --cap-add NET_ADMIN,NET_RAW --read-only \
#     -v /etc/vipd:/etc/vipd:ro "$(cat deploy/IMAGE)"
#
# Without a Docker engine, `go run ./tools/image` builds the same image
# (internal/image); internal/image/dockerfile_test.go keeps this file and
# that build in agreement: binary path, go build flags, user, entrypoint,
# command, environment and labels.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG TARGETARCH
# CGO off: a static binary, the image has no libc. No .git in the context,
# so no VCS stamp: the revision is a label.
RUN CGO_ENABLED=0 GOOS=linux GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false -ldflags="-s -w -X main.version=${VERSION}" -o /out/vipd ./cmd/vipd

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
COPY --from=build /out/vipd /usr/bin/vipd
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL org.opencontainers.image.source="https://github.com/vipd/vipd" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="NOASSERTION" \
      org.opencontainers.image.title="vipd" \
      org.opencontainers.image.description="vipd holds virtual IPs highly available (VRRP, Kubernetes Lease, gossip or static)"
# Root on purpose, with every capability but NET_ADMIN and NET_RAW dropped
# by the runtime: a non-root user would need file capabilities, which
# no_new_privs (allowPrivilegeEscalation: false) ignores. See docs/image.md.
USER 0:0
ENTRYPOINT ["/usr/bin/vipd"]
CMD ["run", "--config", "/etc/vipd/vipd.yaml"]
