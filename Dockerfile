# syntax=docker/dockerfile:1
# One image for "tokensmith controller", "tokensmith server" and "tokensmith local".
# Build: make docker-build IMG=<registry>/tokensmith:<tag>

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
COPY --from=builder /out/tokensmith /tokensmith
USER 65532:65532
ENTRYPOINT ["/tokensmith"]
