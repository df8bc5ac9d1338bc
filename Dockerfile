# authproxy: a static binary on a minimal, non-root image.
#   docker build -t authproxy .
#   docker run -p 8080:8080 -e REDGIFS_CLIENT_ID=... -e REDGIFS_CLIENT_SECRET=... authproxy
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/authproxy/authproxy/app.Version=${VERSION}" -o /out/authproxy .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/authproxy /authproxy
COPY proxy.yaml /etc/authproxy/proxy.yaml
# Inside a container the network boundary is the container's: listen on
# every interface there, and let probes and Prometheus reach the admin port.
ENV AUTHPROXY_CONFIG=/etc/authproxy/proxy.yaml \
    AUTHPROXY_LISTEN=:8080 \
    AUTHPROXY_ADMIN_LISTEN=:9090 \
    AUTHPROXY_STORE_PATH=/var/lib/authproxy/tokens.json
# Rotated refresh tokens live here: keep it on a volume.
VOLUME /var/lib/authproxy
EXPOSE 8080 9090
USER nonroot:nonroot
HEALTHCHECK --interval=10s --timeout=5s --retries=3 CMD ["/authproxy", "health"]
ENTRYPOINT ["/authproxy"]
