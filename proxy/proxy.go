// Package proxy forwards a legacy app's plain requests to upstream APIs
// with an OAuth2 access token attached.
//
// Each Upstream gets an httputil.ReverseProxy whose transport asks a
// TokenSource for the token, sets it on the outbound request, and replays
// the request once with a fresh token when the upstream rejects it.
// Requests are routed by path prefix and only ever sent to an upstream's
// configured target.
package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"
)

// Upstream is one API behind the proxy. The zero value of each optional
// field has the meaning its comment gives.
type Upstream struct {
	// Name identifies the upstream in logs and error bodies.
	Name string
	// Target is where requests go: scheme, host and an optional base path.
	Target *url.URL
	// PathPrefix selects the requests for this upstream and is stripped
	// from them. "" takes every request no other prefix takes.
	PathPrefix string
	// Hosts select the requests for this upstream that come through the
	// forward proxy: "name:port", lower case. They choose the upstream,
	// never the destination: requests go to Target. Nil: none.
	Hosts []string
	// Tokens supplies the access token. Required.
	Tokens TokenSource
	// Header is the header the token goes in; "" means Authorization.
	Header string
	// Format renders the header value: {token} is the access token and
	// {token_type} its normalised type. "" means "Bearer {token}".
	Format string
	// StaticHeaders are set on every forwarded request.
	StaticHeaders map[string]string
	// ReplayOn lists the statuses after which the token is refreshed and
	// the request sent once more. Nil means none.
	ReplayOn []int
	// MaxReplayBody is the largest body kept for a replay; larger bodies
	// stream through and are not replayed. Zero replays only requests
	// without a body.
	MaxReplayBody int64
	// IdleTimeout cuts off a response body that sends nothing for this
	// long. Zero never does.
	IdleTimeout time.Duration
	// AppendForwardedFor passes the client's X-Forwarded-For on with the
	// client's address appended, and sets X-Forwarded-Host and -Proto.
	// False drops them, Forwarded, every other X-Forwarded-*, and the
	// headers by which a client claims an address or overrides the path
	// (X-Real-IP, X-Original-URL, ...), as client-sent headers cannot be
	// trusted.
	AppendForwardedFor bool
	// DPoP, if set, is the key the tokens are bound to (RFC 9449): every
	// request sent upstream carries a proof made for it alone, and a 401
	// asking for the upstream's nonce is sent once more with one (see
	// requestHeader). Format then defaults to "{token_type} {token}",
	// which gives `Authorization: DPoP <token>`.
	DPoP *auth.DPoPKey
	// Transport sends requests upstream; nil means a clone of
	// http.DefaultTransport whose connections are dialled through
	// WithPooledCopy.
	Transport http.RoundTripper
}

// Options are the handler's settings. The zero value of each field has
// the meaning its comment gives.
type Options struct {
	// Log receives proxy errors, and the access log unless AccessLog is
	// set; nil discards them.
	Log logrus.FieldLogger
	// AccessLog, if set, writes the access log in place of Log.
	AccessLog AccessLogger
	// Now is the clock of the access log's times and durations; nil
	// means time.Now.
	Now func() time.Time
	// MaxRequestBody is the largest request body accepted; larger ones get
	// 413. Zero means no limit.
	MaxRequestBody int64
	// Inbound limits who may use the proxy.
	Inbound Inbound
	// ReplayBudget bounds the memory that the copies of request bodies
	// kept for a replay take together; nil bounds only each one, by its
	// upstream's MaxReplayBody.
	ReplayBudget *ReplayBudget
	// BodyReadTimeout answers 408 to a client whose request body makes
	// no progress for this long. Zero waits for ever.
	BodyReadTimeout time.Duration
	// Forward is what the forward proxy serves (see ForwardServer).
	Forward Forward
	// OnRequest, if set, is called once per request after it is answered.
	// It must not block.
	OnRequest func(RequestEvent)
	// TracerProvider, if set, records each request as a trace (see
	// trace.go); nil records none, at no cost.
	TracerProvider trace.TracerProvider
}

// RequestEvent describes one answered request, for metrics.
type RequestEvent struct {
	Upstream string // "" when no upstream took it
	// Mode is the way the request came in; Host, for ModeForward, the
	// host:port it named ("" for ModeReverse).
	Mode     Mode
	Host     string
	Method   string
	Status   int
	Duration time.Duration
	// ReplaySkipped says why a request that could have been replayed had
	// its body streamed without a copy: "max_body" (larger than its
	// upstream keeps) or "memory_budget" (the ReplayBudget was taken).
	ReplaySkipped string
	// Truncated means the upstream's answer ended before its end (a
	// connection closed short of its Content-Length, or a broken chunked
	// body): the client got Status and then a cut-off body.
	Truncated bool
	// Replay is "" when the request was not replayed, else "success" (the
	// replay was answered with another status), "rejected" (the upstream
	// refused the fresh token too) or "error".
	Replay string
	// Error and Fault say what failed, as the access log does; "" if
	// nothing did.
	Error string
	Fault Fault
}

// Handler routes requests to upstreams. It is an http.Handler.
type Handler struct {
	routes      []route // longest prefix first
	log         logrus.FieldLogger
	now         func() time.Time
	maxBody     int64
	bodyTimeout time.Duration
	inbound     Inbound
	onRequest   func(RequestEvent)
	accessLog   AccessLogger      // nil: log through log
	hosts       map[string]*route // the forward proxy's routes, by "name:port"
	forward     Forward
	trace       handlerTracer
}

type route struct {
	prefix string
	name   string
	proxy  *httputil.ReverseProxy
}

// New builds the handler.
func New(upstreams []Upstream, opts Options) (*Handler, error) {
	log := opts.Log
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = l
	}
	h := &Handler{log: log, now: time.Now, maxBody: opts.MaxRequestBody, bodyTimeout: opts.BodyReadTimeout,
		inbound: opts.Inbound, onRequest: opts.OnRequest, accessLog: opts.AccessLog, forward: opts.Forward,
		trace: newHandlerTracer(opts.TracerProvider)}
	if opts.Now != nil {
		h.now = opts.Now
	}
	seen := map[string]string{}
	hostsOf := map[string][]string{}
	for _, u := range upstreams {
		hostsOf[u.Name] = u.Hosts
		if u.Target == nil || u.Target.Scheme == "" || u.Target.Host == "" {
			return nil, fmt.Errorf("upstream %q: target must be an absolute URL", u.Name)
		}
		if u.Tokens == nil {
			return nil, fmt.Errorf("upstream %q: no token source", u.Name)
		}
		prefix := strings.TrimSuffix(u.PathPrefix, "/")
		if other, dup := seen[prefix]; dup {
			return nil, fmt.Errorf("upstreams %q and %q have the same path prefix %q", other, u.Name, u.PathPrefix)
		}
		seen[prefix] = u.Name
		rp := newReverseProxy(u, prefix, log, opts.ReplayBudget)
		h.trace.route(rp)
		h.routes = append(h.routes, route{prefix: prefix, name: u.Name, proxy: rp})
	}
	sort.Slice(h.routes, func(i, j int) bool { return len(h.routes[i].prefix) > len(h.routes[j].prefix) })
	h.hosts = map[string]*route{}
	for i := range h.routes {
		for _, host := range hostsOf[h.routes[i].name] {
			if other, dup := h.hosts[host]; dup {
				return nil, fmt.Errorf("upstreams %q and %q both list host %s", other.name, h.routes[i].name, host)
			}
			h.hosts[host] = &h.routes[i]
		}
	}
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.serve(w, r, nil, nil) }

// serve answers a request that came in by the proxy's own listener (fw
// nil), or through the forward proxy fw: as an absolute-form or CONNECT
// request (tun nil), or inside the tunnel tun. Every way in takes the same
// admission, refusals, routes and failures.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, fw *ForwardServer, tun *tunnel) {
	st := newRequestState(h.trace.start(r), h.now())
	st.rec.ResponseWriter = w
	r = r.WithContext(&st.ctx)
	defer h.logAccess(r, st)
	rec := &st.rec
	if fw != nil {
		st.info.mode = ModeForward
	}

	if err := h.checkRequest(r, &st.info, tun); err != nil {
		writeError(rec, r, "", err)
		return
	}
	st.wrapBody(r, w, h.maxBody, h.bodyTimeout)
	if fw != nil {
		fw.route(h, rec, r, st, tun)
		return
	}
	for i := range h.routes {
		rt := &h.routes[i]
		if matchPrefix(r.URL.EscapedPath(), rt.prefix) {
			st.info.upstream = rt.name
			rt.proxy.ServeHTTP(rec, r)
			return
		}
	}
	writeError(rec, r, "", errNoRoute)
}

// matchPrefix reports whether path is prefix or lies below it.
func matchPrefix(path, prefix string) bool {
	return prefix == "" || path == prefix || strings.HasPrefix(path, prefix) && path[len(prefix)] == '/'
}

var (
	errNoRoute    = &requestError{failNoRoute, "no upstream is configured for this path"}
	errTooLarge   = &requestError{failTooLarge, "the request body is larger than the proxy accepts"}
	errDotSegment = &requestError{failBadRequest,
		"dot segments in the path are refused, also encoded, with ;parameters, backslashes or look-alikes"}
	errTrace = &requestError{failMethodNotAllowed,
		"TRACE and TRACK are not proxied: the upstream would echo the request, and the token with it"}
)

// echoesRequest reports whether method asks the upstream to echo the
// request it receives: TRACE, and TRACK, IIS's alias of it. The echo would
// hand the client the token the proxy set (RFC 9110 9.3.8: a client must
// not send credentials in a TRACE, and here the proxy is that client).
// Methods are case-sensitive, but some servers fold them.
func echoesRequest(method string) bool {
	return len(method) == 5 && (strings.EqualFold(method, "TRACE") || strings.EqualFold(method, "TRACK"))
}

// checkRequest refuses what must never be forwarded: an absolute-form or
// authority-form request URI names a host of the client's choosing, a dot
// segment could climb out of the target's base path once the upstream
// normalises it, and an h2c upgrade would open a tunnel past the proxy's
// checks (h2c smuggling), and a TRACE would come back with the token.
// It also applies the inbound access rules. Through the forward proxy,
// absolute form and CONNECT are how a client names its host:
// checkForward decides on them, and inside a tunnel they are refused as
// here.
func (h *Handler) checkRequest(r *http.Request, info *requestInfo, tun *tunnel) error {
	admit := h.inbound.admit
	if info.mode == ModeForward {
		admit = func(r *http.Request) error { return h.inbound.admitForward(r, tun != nil) }
	}
	if err := admit(r); err != nil {
		return err
	}
	if echoesRequest(r.Method) {
		return errTrace
	}
	if h.maxBody > 0 && r.ContentLength > h.maxBody {
		return errTooLarge
	}
	for _, v := range r.Header.Values("Upgrade") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "h2c") {
				return &requestError{failBadRequest, "h2c upgrades are refused"}
			}
		}
	}
	if info.mode == ModeForward {
		if err := h.checkForward(r, info, tun); err != nil || r.Method == http.MethodConnect {
			return err
		}
	} else if r.URL.Scheme != "" || r.URL.Host != "" || r.Method == http.MethodConnect {
		return &requestError{failBadRequest, "absolute-form and CONNECT requests are not proxied; send the path only"}
	}
	if !strings.HasPrefix(r.URL.Path, "/") {
		return &requestError{failBadRequest, "the request path must start with /"}
	}
	if climbsOut(r.URL.EscapedPath()) {
		return errDotSegment
	}
	return nil
}
