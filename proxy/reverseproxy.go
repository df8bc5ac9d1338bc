package proxy

// The ReverseProxy of one upstream: its Rewrite (the URL onto the target,
// the headers the client may not send and those the proxy sets), its
// token transport, and httputil's own error log sent to logrus.

import (
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/authproxy/authproxy/outbound"
	"github.com/sirupsen/logrus"
)

func newReverseProxy(u Upstream, prefix string, logger logrus.FieldLogger, budget *ReplayBudget) *httputil.ReverseProxy {
	base := u.Transport
	if base == nil {
		base = outbound.Transport(outbound.Settings{WrapDial: WithPooledCopy})
	}
	header, format := u.Header, u.Format
	if header == "" {
		header = "Authorization"
	}
	var perRequest requestHeader
	if u.DPoP != nil {
		perRequest = dpopProof{key: u.DPoP, upstream: u.Name}
	}
	switch {
	case format == "" && u.DPoP != nil:
		format = "{token_type} {token}"
	case format == "":
		format = "Bearer {token}"
	}
	static := http.Header{}
	for k, v := range u.StaticHeaders {
		static.Set(k, v)
	}
	ours := oursToSet(header, static, u.AppendForwardedFor)
	target := u.Target
	// Through the forward proxy the app sends the API's own path: it goes
	// to the target's scheme and host as it came, not below its path.
	targetRoot := &url.URL{Scheme: target.Scheme, Host: target.Host}
	return &httputil.ReverseProxy{
		// Rewrite, not Director: with Director, hop-by-hop removal runs
		// afterwards and could delete what it set. The token itself is
		// set later still, by the transport.
		Rewrite: func(pr *httputil.ProxyRequest) {
			if infoFrom(pr.In.Context()).mode == ModeForward {
				pr.SetURL(targetRoot) // the path as it came; the Host the target's
			} else {
				rest := strings.TrimPrefix(pr.In.URL.EscapedPath(), prefix)
				if rest == "" || rest[0] != '/' {
					rest = "/" + rest
				}
				pr.Out.URL.RawPath = rest
				pr.Out.URL.Path, _ = url.PathUnescape(rest)
				pr.SetURL(target) // also sets the outbound Host to the target's
			}
			// ReverseProxy has already dropped the client's Forwarded and
			// X-Forwarded-For, -Host and -Proto from Out.
			dropClientHeaders(pr.Out.Header, ours, !u.AppendForwardedFor)
			if u.AppendForwardedFor {
				if prior := pr.In.Header.Values("X-Forwarded-For"); len(prior) > 0 {
					pr.Out.Header["X-Forwarded-For"] = prior
				}
				pr.SetXForwarded()
			}
		},
		Transport: &tokenTransport{
			base: base, upstream: u.Name, tokens: u.Tokens,
			header: http.CanonicalHeaderKey(header), render: headerTemplate(format), static: static,
			replayOn: u.ReplayOn, maxBody: u.MaxReplayBody, budget: budget, idleTimeout: u.IdleTimeout,
			log: logger.WithField("upstream", u.Name), perRequest: perRequest,
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, r, u.Name, err)
		},
		ErrorLog:   log.New(logWriter{logger.WithField("upstream", u.Name)}, "", 0),
		BufferPool: copyBuffers,
	}
}

// oursToSet is the set of headers the proxy sets on every request to an
// upstream, by their names with "-" for "_", canonical: the token's, the
// static ones, and with AppendForwardedFor the X-Forwarded-* it sets.
func oursToSet(tokenHeader string, static http.Header, appendForwardedFor bool) map[string]bool {
	ours := map[string]bool{dashed(tokenHeader): true}
	for k := range static {
		ours[dashed(k)] = true
	}
	if appendForwardedFor {
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
			ours[k] = true
		}
	}
	return ours
}

// dashed is a header name with "-" for "_", canonical: how CGI-style apps
// (PHP, WSGI, Rack) tell headers apart, reading X_Real_IP and X-Real-IP
// alike as HTTP_X_REAL_IP. Go's server keeps such a name apart from the
// other (as X_real_ip).
func dashed(k string) string {
	if strings.IndexByte(k, '_') >= 0 { // allocates only for such a name
		k = strings.ReplaceAll(k, "_", "-")
	}
	return http.CanonicalHeaderKey(k) // no allocation if it already is
}

// dropClientHeaders removes, in one pass over the headers there are and
// in any spelling with "_" for "-", what the client sent of the headers
// the proxy sets (ours, by dashed name), which would otherwise reach the
// upstream beside the proxy's own; and, with claimed, what a client says
// about where it came from or what it asked for (see
// Upstream.AppendForwardedFor): every X-Forwarded-* (-Port and -Prefix
// steer some frameworks' routing) and the claimed-origin headers below.
// It runs before the proxy sets its own.
func dropClientHeaders(h http.Header, ours map[string]bool, claimed bool) {
	for k := range h {
		name := dashed(k)
		if ours[name] || claimed && (len(name) >= len("X-Forwarded-") && strings.EqualFold(name[:len("X-Forwarded-")], "X-Forwarded-") || claimedOrigin(name)) {
			delete(h, k)
		}
	}
}

// claimedOrigin reports whether k is a header, besides the X-Forwarded-*
// family, by which a client could pose as another address or steer the
// upstream's routing: X-Original-URL and X-Rewrite-URL override the path
// in IIS and Symfony. Keys are compared in their canonical form, as the
// server reads them and as http.Header.Del would have.
func claimedOrigin(k string) bool {
	switch k {
	case "X-Real-Ip", "True-Client-Ip", "X-Client-Ip", "X-Cluster-Client-Ip", "X-Original-Url", "X-Rewrite-Url":
		return true
	}
	return false
}

// logWriter sends httputil's own error log lines to logrus.
type logWriter struct{ log logrus.FieldLogger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Warn(strings.TrimSpace(string(p)))
	return len(p), nil
}
