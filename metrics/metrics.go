// Package metrics exposes the proxy's Prometheus metrics. It knows
// nothing of the other packages: app feeds it through their hooks.
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Metrics holds the collectors, on a registry of its own (not the global
// one, so tests and reloads can make as many as they like).
type Metrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	inflight      prometheus.Gauge
	tokenRequests *prometheus.CounterVec
	refreshes     *prometheus.CounterVec
	replays       *prometheus.CounterVec
	shared        *prometheus.CounterVec
	replaySkipped *prometheus.CounterVec
	truncated     *prometheus.CounterVec
	errors        *prometheus.CounterVec
	forward       *prometheus.CounterVec

	// upstreams, once set, are the upstream labels exported; nil: all.
	upstreams atomic.Pointer[map[string]bool]
	// byUpstream are the vectors with an upstream label, whose series of
	// a removed upstream are deleted.
	byUpstream []interface {
		DeletePartialMatch(prometheus.Labels) int
	}
}

// New registers every metric. read, if not nil, gives the gauges' values
// at each scrape.
func New(read func() Gauges) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_requests_total", Help: "Requests answered, by upstream, method and status.",
		}, []string{"upstream", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "authproxy_request_duration_seconds", Help: "Time to answer a request, token fetch and replay included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"upstream"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authproxy_inflight_requests", Help: "Requests being answered now.",
		}),
		tokenRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_token_requests_total", Help: "Token fetches, by upstream and result: success, or error (refused, unreachable, a bad answer, or none sent, as with no refresh token stored yet).",
		}, []string{"upstream", "result"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_token_refreshes_total", Help: "Token fetches by reason: startup, expiry (ahead of time), expired, 401.",
		}, []string{"upstream", "reason"}),
		replays: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_replays_total", Help: "Requests replayed after a 401, by outcome: success, rejected (again), error.",
		}, []string{"upstream", "outcome"}),
		shared: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_shared_token_fetches_total",
			Help: "Token fetches through the shared store, by what happened: adopted (another replica's token), fetched (by this replica, then shared), fallback (fetched alone: the store was unreachable), unavailable (failed closed).",
		}, []string{"upstream", "event"}),
		replaySkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_replay_skipped_total",
			Help: "Requests whose body streamed without the copy a replay needs, by reason: max_body (larger than the upstream keeps), memory_budget (limits.replay_memory was taken).",
		}, []string{"upstream", "reason"}),
		truncated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_upstream_truncated_total",
			Help: "Answers the upstream broke off before their end (closed short of their Content-Length, or a broken chunked body); counted in authproxy_requests_total with the status the client got first.",
		}, []string{"upstream"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_request_errors_total",
			Help: "Requests that failed, by upstream, error (the code the client and the access log got) and fault (client, upstream, token_endpoint, proxy).",
		}, []string{"upstream", "error", "fault"}),
		forward: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_forward_requests_total",
			Help: "Requests that came in through the forward proxy (also counted in authproxy_requests_total), by upstream, the host they named (an upstream's host; other for a pass-through or refused one) and status; a CONNECT is one, each request inside its tunnel another.",
		}, []string{"upstream", "host", "status"}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.inflight, m.tokenRequests, m.refreshes, m.replays, m.shared,
		m.replaySkipped, m.truncated, m.errors, m.forward, gaugeCollector{read},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.byUpstream = append(m.byUpstream, m.requests, m.duration, m.tokenRequests, m.refreshes, m.replays, m.shared,
		m.replaySkipped, m.truncated, m.errors, m.forward)
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(prometheus.GathererFunc(m.gather), promhttp.HandlerOpts{Registry: m.reg})
}

// SetUpstreams names the upstreams the running config has: the series of
// any other upstream are no longer exported, so that one a reload removed
// does not linger, unchanging, until the next restart.
func (m *Metrics) SetUpstreams(names []string) {
	keep := map[string]bool{noUpstream: true}
	for _, n := range names {
		keep[n] = true
	}
	m.upstreams.Store(&keep)
}

// noUpstream labels requests that matched no upstream.
const noUpstream = "none"

// gather leaves out, and deletes, the series of upstreams not in the
// running config. Leaving them out at scrape time, rather than only
// deleting them at the reload, also covers a request that was still in
// flight on the removed upstream and recorded itself afterwards.
func (m *Metrics) gather() ([]*dto.MetricFamily, error) {
	families, err := m.reg.Gather()
	keep := m.upstreams.Load()
	if keep == nil {
		return families, err
	}
	stale := map[string]bool{}
	for _, mf := range families {
		kept := mf.Metric[:0]
		for _, metric := range mf.Metric {
			if name, ok := upstreamOf(metric); ok && !(*keep)[name] {
				stale[name] = true
				continue
			}
			kept = append(kept, metric)
		}
		mf.Metric = kept
	}
	families = slices.DeleteFunc(families, func(mf *dto.MetricFamily) bool { return len(mf.Metric) == 0 })
	for name := range stale {
		for _, vec := range m.byUpstream {
			vec.DeletePartialMatch(prometheus.Labels{"upstream": name})
		}
	}
	return families, err
}

func upstreamOf(metric *dto.Metric) (string, bool) {
	for _, l := range metric.GetLabel() {
		if l.GetName() == "upstream" {
			return l.GetValue(), true
		}
	}
	return "", false
}

// knownMethods bounds the method label: anything else is "OTHER".
var knownMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true}

// statusLabels holds the label of every status, so recording one
// allocates nothing.
var statusLabels = func() (l [600]string) {
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

func statusLabel(s int) string {
	if s >= 0 && s < len(statusLabels) {
		return statusLabels[s]
	}
	return strconv.Itoa(s)
}

// Request records one answered request. replay is "" if it was not
// replayed, else its outcome; errCode and fault say what failed, "" if
// nothing did.
func (m *Metrics) Request(upstream, method string, status int, d time.Duration, replay, errCode, fault string) {
	if !knownMethods[method] {
		method = "OTHER"
	}
	if upstream == "" {
		upstream = noUpstream
	}
	m.requests.WithLabelValues(upstream, method, statusLabel(status)).Inc()
	m.duration.WithLabelValues(upstream).Observe(d.Seconds())
	if replay != "" {
		m.replays.WithLabelValues(upstream, replay).Inc()
	}
	if errCode != "" {
		m.errors.WithLabelValues(upstream, errCode, fault).Inc()
	}
}

// ForwardRequest records one answered request that came in through the
// forward proxy. host must be one the config names (an upstream's), or
// "" for any other, which is counted as "other": the label stays
// bounded whatever hosts clients ask for.
func (m *Metrics) ForwardRequest(upstream, host string, status int) {
	if upstream == "" {
		upstream = noUpstream
	}
	if host == "" {
		host = "other"
	}
	m.forward.WithLabelValues(upstream, host, statusLabel(status)).Inc()
}

// InFlight wraps h to count the requests it is answering.
func (m *Metrics) InFlight(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.inflight.Inc()
		defer m.inflight.Dec()
		h.ServeHTTP(w, r)
	})
}

// TokenFetch records one token request and why it was made.
func (m *Metrics) TokenFetch(upstream, reason string, err error) {
	result := "success"
	if err != nil {
		result = "error"
	}
	if reason == "rejected" {
		reason = "401"
	}
	m.tokenRequests.WithLabelValues(upstream, result).Inc()
	m.refreshes.WithLabelValues(upstream, reason).Inc()
}

// SharedToken records what a fetch through the shared store did.
func (m *Metrics) SharedToken(upstream, event string) {
	m.shared.WithLabelValues(upstream, event).Inc()
}

// ReplaySkipped records a request whose body streamed without a replay
// copy, and why.
func (m *Metrics) ReplaySkipped(upstream, reason string) {
	m.replaySkipped.WithLabelValues(upstream, reason).Inc()
}

// UpstreamTruncated records an answer the upstream broke off.
func (m *Metrics) UpstreamTruncated(upstream string) {
	m.truncated.WithLabelValues(upstream).Inc()
}
