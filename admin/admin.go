// Package admin serves the operator's endpoints on their own listener:
// /healthz, /readyz, /status and /metrics. It never shows a token.
package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Upstream is what admin needs of one upstream.
type Upstream struct {
	Name string
	// State reports the token's state without fetching.
	State func() State
	// Ensure tries to get a usable token within ctx, for a readiness
	// check that finds none; it returns why not.
	Ensure func(ctx context.Context) error
	// Reason turns an error from Ensure or State into a short reason such
	// as "reauthorization_required". It is not called with nil: no token
	// and no error yet is "no_token_yet".
	Reason func(error) string
	// ForwardHosts are the hosts ("name:port") through which the forward
	// proxy reaches this upstream; nil when it is off.
	ForwardHosts []string
	// Requests counts the requests answered for this upstream, by the way
	// they came in; nil: not shown.
	Requests func() Requests
}

// Requests counts an upstream's answered requests by the way they came
// in: to the proxy's own address (Reverse) or through the forward proxy
// (Forward), and which host the last forward one named.
type Requests struct {
	Reverse         uint64 `json:"reverse"`
	Forward         uint64 `json:"forward"`
	LastForwardHost string `json:"last_forward_host,omitempty"`
}

// reason says why u has no usable token.
func (u Upstream) reason(err error) string {
	if err == nil {
		return "no_token_yet"
	}
	return u.Reason(err)
}

// State is one upstream's token state.
type State struct {
	Valid       bool
	ExpiresAt   time.Time
	LastRefresh time.Time
	LastError   error
	// SharedStore is "" without a shared store, else "shared", "fallback"
	// (unreachable: this replica fetches alone) or "unavailable"
	// (unreachable: failing closed); SharedStoreError says why.
	SharedStore      string
	SharedStoreError error
	// DPoPThumbprint is the RFC 7638 thumbprint of the key the tokens are
	// bound to (public: the tokens' cnf.jkt); "" without DPoP.
	DPoPThumbprint string
}

// Handler serves the admin endpoints. Its zero value is not usable; fill
// in the fields, and do not change or copy them once it serves.
type Handler struct {
	// Upstreams lists the current upstreams; it is called per request, so
	// a config reload shows at once.
	Upstreams func() []Upstream
	// Metrics serves /metrics; nil answers 404.
	Metrics http.Handler
	// ShuttingDown makes /readyz answer 503 once set.
	ShuttingDown *atomic.Bool
	// ProbeTimeout bounds /readyz's attempt to get a token; zero means 2s.
	ProbeTimeout time.Duration

	// The mux is built on the first request, which the server's
	// connections may make at the same time.
	muxOnce sync.Once
	mux     *http.ServeMux
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.muxOnce.Do(func() {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})
		mux.HandleFunc("GET /readyz", h.readyz)
		mux.HandleFunc("GET /status", h.status)
		if h.Metrics != nil {
			mux.Handle("GET /metrics", h.Metrics)
		}
		h.mux = mux
	})
	h.mux.ServeHTTP(w, r)
}

type readiness struct {
	Ready        bool              `json:"ready"`
	ShuttingDown bool              `json:"shutting_down,omitempty"`
	NotReady     map[string]string `json:"not_ready,omitempty"` // upstream -> reason
}

// readyz is 200 only when every upstream has a usable token. One that has
// none gets one bounded attempt, so a cold start becomes ready without
// traffic once the first fetch succeeds.
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	if h.ShuttingDown != nil && h.ShuttingDown.Load() {
		writeJSON(w, http.StatusServiceUnavailable, readiness{ShuttingDown: true})
		return
	}
	timeout := h.ProbeTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	res := readiness{Ready: true}
	for _, u := range h.Upstreams() {
		if u.State().Valid {
			continue
		}
		if err := u.Ensure(ctx); err != nil {
			if res.NotReady == nil {
				res.NotReady = map[string]string{}
			}
			res.Ready = false
			res.NotReady[u.Name] = u.reason(err)
		}
	}
	status := http.StatusOK
	if !res.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, res)
}

type upstreamStatus struct {
	Name        string     `json:"upstream"`
	State       string     `json:"state"` // valid, or the reason there is no usable token
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	LastRefresh *time.Time `json:"last_refresh,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	SharedStore string     `json:"shared_store,omitempty"`
	StoreError  string     `json:"shared_store_error,omitempty"`
	DPoPJKT     string     `json:"dpop_jkt,omitempty"`
	// ForwardHosts and Requests are there when the forward proxy is on.
	ForwardHosts []string  `json:"forward_hosts,omitempty"`
	Requests     *Requests `json:"requests,omitempty"`
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	out := []upstreamStatus{}
	for _, u := range h.Upstreams() {
		st := u.State()
		us := upstreamStatus{Name: u.Name, State: "valid", ExpiresAt: timePtr(st.ExpiresAt), LastRefresh: timePtr(st.LastRefresh)}
		if st.LastError != nil {
			us.LastError = st.LastError.Error()
		}
		us.SharedStore, us.DPoPJKT = st.SharedStore, st.DPoPThumbprint
		us.ForwardHosts = u.ForwardHosts
		if u.Requests != nil {
			r := u.Requests()
			us.Requests = &r
		}
		if st.SharedStoreError != nil {
			us.StoreError = st.SharedStoreError.Error()
		}
		if !st.Valid {
			us.State = u.reason(st.LastError)
		}
		out = append(out, us)
	}
	writeJSON(w, http.StatusOK, out)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
