package proxy

import (
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// Mode is the way a request came in.
type Mode uint8

const (
	// ModeReverse: to the proxy's own address, by path (the zero Mode).
	ModeReverse Mode = iota
	// ModeForward: through the forward proxy (HTTP_PROXY, HTTPS_PROXY),
	// by host: an absolute-form http:// request, a CONNECT, or a request
	// inside a CONNECT tunnel.
	ModeForward
)

func (m Mode) String() string {
	if m == ModeForward {
		return "forward"
	}
	return "reverse"
}

// LeafCertificates gives the certificate a tunnel to host (a DNS name)
// is served with. pki.Minter implements it.
type LeafCertificates interface {
	Certificate(host string) (*tls.Certificate, error)
}

// Forward is what the forward proxy serves with a config. The zero value
// serves upstreams by their hosts over plain HTTP only.
type Forward struct {
	// Certificates mints a tunnel's certificate; nil refuses CONNECT to an
	// upstream's host.
	Certificates LeafCertificates
	// PassThrough are the hosts tunnelled blindly, without a token:
	// "name:port", or "*.suffix:port" for every name below suffix.
	PassThrough []string
}

var (
	errProxyAuth = &requestError{failProxyAuth,
		"a valid proxy API key is required: send inbound.api_keys' key as the password of Proxy-Authorization: Basic (e.g. HTTPS_PROXY=http://app:KEY@host:port)"}
	errForwardLoopback = &requestError{failForbidden, "the forward proxy takes loopback clients only unless inbound.allow_cidrs lets others in"}
	errTunnelForm      = &requestError{failBadRequest, "inside a tunnel, send the path only (origin form), not an absolute URI or CONNECT"}
	errForwardForm     = &requestError{failBadRequest, "the forward proxy takes absolute-form http:// requests and CONNECT host:port"}
)

// admitForward is admit for the forward proxy: the client's address
// (loopback only, unless AllowCIDRs says otherwise), and with APIKeys a
// key as the password of Proxy-Authorization: Basic, which is what
// clients send from the user info of HTTP(S)_PROXY. Inside a tunnel
// (admitted), the CONNECT that opened it was admitted. Proxy-Authorization
// and the key header are removed here, before ReverseProxy would drop the
// first as hop-by-hop, and never reach an upstream.
func (in *Inbound) admitForward(r *http.Request, admitted bool) error {
	auth := r.Header.Get("Proxy-Authorization")
	r.Header.Del("Proxy-Authorization")
	r.Header.Del(in.keyHeader())
	if len(in.AllowCIDRs) > 0 {
		if !in.allowed(r.RemoteAddr) {
			return errForbidden
		}
	} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err != nil || !net.ParseIP(host).IsLoopback() {
		return errForwardLoopback
	}
	if len(in.APIKeys) == 0 || admitted {
		return nil
	}
	got := basicPassword(auth)
	match := 0
	for _, k := range in.APIKeys {
		match |= subtle.ConstantTimeCompare([]byte(got), []byte(k))
	}
	if match != 1 || got == "" {
		return errProxyAuth
	}
	return nil
}

// basicPassword is the password of a Basic credential; "" if there is
// none.
func basicPassword(auth string) string {
	const prefix = "Basic "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return ""
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(auth[len(prefix):]))
	if err != nil {
		return ""
	}
	_, pass, _ := strings.Cut(string(b), ":")
	return pass
}

// checkForward is checkRequest's part for the forward proxy: which host
// the request names, and whether it may go there. The host is recorded
// in info (for the access log and the metrics) before anything is
// refused. Only a host an upstream lists is served, always by that
// upstream's target; a pass_through host is tunnelled; anything else is
// refused before any connection is made.
func (h *Handler) checkForward(r *http.Request, info *requestInfo, tun *tunnel) error {
	if tun != nil {
		info.host = tun.host
		if r.Method == http.MethodConnect || r.URL.Scheme != "" || r.URL.Host != "" {
			return errTunnelForm
		}
		// The host chooses the upstream, and the tunnel chose the host:
		// another name here is never routed, to its upstream or any.
		if got := normalHost(r.Host, "443"); got != tun.host {
			return &requestError{failMisdirected, fmt.Sprintf("this tunnel is to %s; the request's Host names %s: open a tunnel to that host", tun.host, got)}
		}
		if h.hosts[tun.host] == nil {
			return hostNotAllowed(tun.host)
		}
		return nil
	}
	var host string
	switch {
	case r.Method == http.MethodConnect:
		if _, port, err := net.SplitHostPort(r.URL.Host); err != nil || port == "" {
			return &requestError{failBadRequest, "CONNECT needs host:port"}
		}
		host = normalHost(r.URL.Host, "")
	case r.URL.Scheme == "http" && r.URL.Host != "":
		host = normalHost(r.URL.Host, "80")
	default:
		return errForwardForm
	}
	info.host = host
	name, _, _ := net.SplitHostPort(host)
	if net.ParseIP(strings.Trim(name, "[]")) != nil {
		return &requestError{failHostNotAllowed, fmt.Sprintf("%s is an IP address; the forward proxy serves host names only", host)}
	}
	// Checked before any pattern: "[2001:db8::1%.blobs.example]" ends
	// like "*.blobs.example" but is an address (its zone the rest), and a
	// dialer takes it as one.
	if !isHostName(name) {
		return &requestError{failHostNotAllowed, fmt.Sprintf("%q is not a host name; the forward proxy serves host names only", name)}
	}
	if h.hosts[host] != nil {
		if r.Method == http.MethodConnect && h.forward.Certificates == nil {
			return &requestError{failHostNotAllowed, fmt.Sprintf("%s: the forward proxy has no CA to serve a tunnel with", host)}
		}
		return nil
	}
	if r.Method == http.MethodConnect && h.passesThrough(host) {
		return nil
	}
	return hostNotAllowed(host)
}

func hostNotAllowed(host string) error {
	return &requestError{failHostNotAllowed, fmt.Sprintf("%s is not served: no upstream lists it in hosts, and it is not in forward_proxy.pass_through", host)}
}

// passesThrough says whether host ("name:port") is in the pass-through
// list. A pattern "*.suffix:port" takes every name below suffix.
func (h *Handler) passesThrough(host string) bool {
	name, port, _ := net.SplitHostPort(host)
	for _, p := range h.forward.PassThrough {
		pname, pport, _ := net.SplitHostPort(p)
		if pport != port {
			continue
		}
		if suffix, ok := strings.CutPrefix(pname, "*"); ok && strings.HasSuffix(name, suffix) || pname == name {
			return true
		}
	}
	return false
}

// isHostName says whether name is a DNS host name: dot-separated labels
// of 1 to 63 letters, digits, hyphens (not first or last) and
// underscores, 253 bytes at most.
func isHostName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// normalHost is host as the forward proxy's tables hold it: lower case,
// without a trailing dot, with a port (defaultPort if it had none).
func normalHost(host, defaultPort string) string {
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		name, port = host, defaultPort
	}
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	return net.JoinHostPort(name, port)
}
