# authproxy: a static binary on a minimal image, running as uid 65532, no shell.
#   docker build -t authproxy .
# The image holds proxy.yaml, the documented example with four real APIs;
# it needs their eight client variables (export them first; Redbooth then
# needs one `authproxy login`: see docs/docker.md):
#   docker run --rm --stop-timeout 35 -p 127.0.0.1:8080:8080 -p 127.0.0.1:9090:9090 -v authproxy-tokens:/var/lib/authproxy \
#     -e REDGIFS_CLIENT_ID -e REDGIFS_CLIENT_SECRET -e PRODUCTHUNT_CLIENT_ID -e PRODUCTHUNT_CLIENT_SECRET \
#     -e TEENQUOTES_CLIENT_ID -e TEENQUOTES_CLIENT_SECRET -e REDBOOTH_CLIENT_ID -e REDBOOTH_CLIENT_SECRET authproxy
# Your own config instead: mount the directory that holds it, as
# proxy.yaml, and pass the variables it names:
#   -v "$PWD/config:/etc/authproxy:ro"
# The directory, not the file: an editor replaces the file, which a file
# mount never shows the container; in a directory the proxy sees it and
# reloads.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The token volume's directory is made here, where there is a shell, and
# copied below owned by the proxy's user: Docker fills a new volume from
# it, so the proxy can write rotated refresh tokens there.
RUN mkdir -p /out/tokens && \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/authproxy/authproxy/app.Version=${VERSION}" -o /out/authproxy .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/authproxy /authproxy
COPY --from=build --chown=65532:65532 /out/tokens /var/lib/authproxy
COPY proxy.yaml /etc/authproxy/proxy.yaml
# Inside a container the network boundary is the container's: listen on
# every interface there, and let probes and Prometheus reach the admin port.
# Publish them on 127.0.0.1 (or behind inbound.api_keys): whoever reaches
# the proxy uses its tokens.
ENV AUTHPROXY_CONFIG=/etc/authproxy/proxy.yaml \
    AUTHPROXY_LISTEN=:8080 \
    AUTHPROXY_ADMIN_LISTEN=:9090 \
    AUTHPROXY_STORE_PATH=/var/lib/authproxy/tokens.json
# Rotated refresh tokens live here: keep it on a volume. A bind mount
# instead must be writable by uid 65532 (chown 65532:65532 DIR).
VOLUME /var/lib/authproxy
EXPOSE 8080 9090
# A number, not a name: Kubernetes' runAsNonRoot can only check a uid.
USER 65532:65532
# SIGTERM drains in-flight requests for up to shutdown_timeout (30s):
# give `docker stop` longer than its default 10s (--stop-timeout 35, or
# stop_grace_period in compose), or they are killed.
HEALTHCHECK --interval=10s --timeout=5s --retries=3 CMD ["/authproxy", "health"]
ENTRYPOINT ["/authproxy"]
