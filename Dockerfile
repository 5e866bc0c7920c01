# herald in a container: a static binary (CGO_ENABLED=0, pure-Go SQLite) on
# a distroless base with no shell and no curl, run as a non-root user, its
# data in the /data volume. See docs/deploy.md.
#
#   docker build -t herald .
#   docker run -p 7480:7480 -v herald-data:/data \
#     -v "$PWD/herald.yaml:/etc/herald/herald.yaml:ro" -e HERALD_CONFIG=/etc/herald/herald.yaml herald

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags='-s -w' -o /out/herald ./cmd/herald \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/herald /usr/local/bin/herald
# 65532 is the base image's nonroot user; the volume's first contents
# (an empty folder) carry its ownership.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME /data
ENV HERALD_DATA=/data \
    HERALD_ADDR=0.0.0.0:7480 \
    HERALD_URL=http://127.0.0.1:7480
EXPOSE 7480
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/herald", "health", "--timeout", "4s"]
ENTRYPOINT ["/usr/local/bin/herald"]
CMD ["serve"]
