package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/metrics"
)

// health asks a running proxy's admin endpoint whether it is up: the
// Docker HEALTHCHECK, which needs no shell or curl in the image.
func health(ctx context.Context, path, url string, opts Options) int {
	if url == "" {
		addr, err := adminAddress(path, opts)
		if err != nil {
			fmt.Fprintln(opts.Stderr, err)
			return 2
		}
		if addr == "" {
			fmt.Fprintln(opts.Stderr, "authproxy health: admin.listen is off (in the config or AUTHPROXY_ADMIN_LISTEN); give --url")
			return 2
		}
		host, port, _ := net.SplitHostPort(addr) // validated by config
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		url = "http://" + net.JoinHostPort(host, port) + "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(opts.Stderr, "authproxy health: %v\n", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(opts.Stderr, "authproxy health: %v\n", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(opts.Stderr, "authproxy health: %s answered %s\n", url, resp.Status)
		return 1
	}
	fmt.Fprintf(opts.Stdout, "healthy: %s\n", url)
	return 0
}

// adminAddress is where the proxy that serve would run with this --config
// and environment has its admin endpoints, "" if they are off: the
// config's admin.listen, read alone (config.AdminListenOf). With no
// --config serve runs the built-in demo, so it is the demo's.
func adminAddress(path string, opts Options) (string, error) {
	name, data := "built-in demo", demoConfig
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return "", fmt.Errorf("read config: %w", err)
		}
		name = path
	}
	return config.AdminListenOf(name, data, config.Options{Lookup: opts.LookupEnv})
}

// tokenStatus is what `authproxy token` prints.
type tokenStatus struct {
	Upstream    string `json:"upstream"`
	TokenType   string `json:"token_type"`
	ExpiresAt   string `json:"expires_at,omitempty"`
	ExpiresIn   string `json:"expires_in,omitempty"`
	AccessToken string `json:"access_token,omitempty"`
}

// token gets an upstream's token as the proxy would (its help says which,
// by grant and store) and prints its status; the token itself only if
// asked.
func token(ctx context.Context, name, path string, show bool, opts Options) int {
	cfg, u, exit := loadUpstream("token", name, path, opts)
	if u == nil {
		return exit
	}
	logger := newLogger(config.Log{Level: "warn", Format: "text"}, opts)
	st, err := openStore(ctx, cfg, logger)
	if err != nil {
		fmt.Fprintln(opts.Stderr, err)
		return 1
	}
	defer st.close()
	cache, err := newTokenSource(ctx, *u, st, logger.WithField("upstream", name), opts.Now, metrics.New(nil))
	if err != nil {
		fmt.Fprintln(opts.Stderr, err)
		return 1
	}
	defer cache.Close()
	ctx, cancel := context.WithTimeout(ctx, u.Token.Timeout+5*time.Second)
	defer cancel()
	tok, err := cache.Token(ctx)
	if err != nil {
		fmt.Fprintf(opts.Stderr, "authproxy token %s: %v\n", name, err)
		return 1
	}
	out := tokenStatus{Upstream: name, TokenType: tok.Type()}
	if !tok.Expiry.IsZero() {
		out.ExpiresAt = tok.Expiry.UTC().Format(time.RFC3339)
		out.ExpiresIn = time.Until(tok.Expiry).Round(time.Second).String()
	}
	if show {
		out.AccessToken = tok.AccessToken
	}
	enc := json.NewEncoder(opts.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(out)
	return 0
}

// loadUpstream loads the config for a command that acts on one upstream
// (login, token) and finds the upstream it was asked about, or says why
// not and returns the exit code. A config that does not load and a name
// it does not have are mistakes in what was asked, not failures of what
// was tried: exit 2, and the same words, whichever command met them.
func loadUpstream(cmd, name, path string, opts Options) (*config.Config, *config.Upstream, int) {
	cfg, err := config.Load(path, config.Options{Lookup: opts.LookupEnv})
	if err != nil {
		fmt.Fprintln(opts.Stderr, err)
		return nil, nil, 2
	}
	names := make([]string, len(cfg.Upstreams))
	for i := range cfg.Upstreams {
		if cfg.Upstreams[i].Name == name {
			return cfg, &cfg.Upstreams[i], 0
		}
		names[i] = cfg.Upstreams[i].Name
	}
	fmt.Fprintf(opts.Stderr, "authproxy %s: no upstream %q in %s; its upstreams: %s\n", cmd, name, path, strings.Join(names, ", "))
	return nil, nil, 2
}
