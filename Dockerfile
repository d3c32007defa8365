# syntax=docker/dockerfile:1
# One image for "tokensmith controller" and "tokensmith server".
# Build: make docker-build IMG=<registry>/tokensmith:<tag>
# Without Docker, "make image" builds the same image (internal/ociimage); test/image
# fails when the two disagree on the binary's path, entrypoint, user, working
# directory or labels.

FROM --platform=$BUILDPLATFORM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src

# Dependencies first, so that a code change does not re-download them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/tokensmith .

# Static binary on distroless: no shell, no package manager, CA certificates and
# tzdata only. The numeric user lets "runAsNonRoot" be checked by the kubelet.
FROM gcr.io/distroless/static:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="tokensmith" \
      org.opencontainers.image.description="Kubernetes-native token service: controller and token server" \
      org.opencontainers.image.source="https://github.com/tokensmith/tokensmith" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=builder /out/tokensmith /tokensmith
USER 65532:65532
WORKDIR /home/nonroot
ENTRYPOINT ["/tokensmith"]
