//go:build tools

// Package jaeger pins the Jaeger build that the tracing tests run as a
// trace backend. It is a module of its own so that Jaeger's dependencies
// never enter authproxy's go.mod.
package jaeger

import _ "github.com/jaegertracing/jaeger/cmd/jaeger"
