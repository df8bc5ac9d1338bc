// Package test checks the Helm chart in deploy/helm/authproxy and the
// sidecar example without a cluster: helm lint and helm template for each
// documented values set, every rendered object decoded strictly into the
// Kubernetes API types, the chart's promises checked on them, and (with
// AUTHPROXY_DOCKER_TESTS=1) the rendered proxy container run in Docker as
// its spec says.
//
// It is a module of its own so that the Kubernetes API types and Helm
// stay out of authproxy's dependencies.
package test
