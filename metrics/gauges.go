package metrics

import "github.com/prometheus/client_golang/prometheus"

// Gauges are the values that describe the present rather than count
// events: read from the running program at each scrape, so that nothing
// has to keep them up to date, and an upstream a reload removed is simply
// no longer there.
type Gauges struct {
	Tokens []TokenGauge
	// ReplayMemory is the bytes the replay copies of request bodies hold.
	ReplayMemory int64
}

// TokenGauge is one upstream's token.
type TokenGauge struct {
	Upstream string
	// ExpiresIn is the seconds until the cached token expires; 0 if none
	// is cached or it has no expiry.
	ExpiresIn float64
	// Shared tells whether the upstream shares its token through a shared
	// store; SharedUp, whether that store answered its last use.
	Shared, SharedUp bool
}

var (
	expiryDesc = prometheus.NewDesc("authproxy_token_expiry_seconds",
		"Seconds until the cached token expires (0: none cached, or it has no expiry).", []string{"upstream"}, nil)
	sharedUpDesc = prometheus.NewDesc("authproxy_shared_store_up",
		"1 while the shared token store answered the upstream's last use of it, 0 after it failed.", []string{"upstream"}, nil)
	replayMemoryDesc = prometheus.NewDesc("authproxy_replay_memory_bytes",
		"Bytes held now by the copies of request bodies kept for a replay (bounded by limits.replay_memory).", nil, nil)
)

// gaugeCollector reports Gauges as read at the scrape.
type gaugeCollector struct{ read func() Gauges }

var _ prometheus.Collector = gaugeCollector{}

func (gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- expiryDesc
	ch <- sharedUpDesc
	ch <- replayMemoryDesc
}

func (c gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	if c.read == nil {
		return
	}
	g := c.read()
	for _, t := range g.Tokens {
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, max(0, t.ExpiresIn), t.Upstream)
		if t.Shared {
			up := 0.0
			if t.SharedUp {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(sharedUpDesc, prometheus.GaugeValue, up, t.Upstream)
		}
	}
	ch <- prometheus.MustNewConstMetric(replayMemoryDesc, prometheus.GaugeValue, float64(g.ReplayMemory))
}
