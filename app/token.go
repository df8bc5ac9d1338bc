package app

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"time"

	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/metrics"
)

// tokenCommand is `authproxy token NAME`: an upstream's token, got as
// the proxy would.
var tokenCommand = command{
	name: "token", args: "NAME --config FILE [--show]", operand: upstreamName, needsConfig: true,
	summary: "get an upstream's token and print its status; the token itself only with --show",
	about: `Get the upstream NAME's token as the proxy would and print its type and
expiry as JSON. Which token that is depends on the grant and the store:
  grant_type: refresh_token: the access token in the store while it is
    valid (one due for refresh is printed, and a new one stored for the
    next run); else one got with the stored refresh token, or the
    config's refresh_token, whose successor is stored.
  every other grant: a new token from the token endpoint, on every run;
    it is not stored, and a running serve does not see it and keeps its
    own.
With store.type: redis, every grant shares the replicas' token: the one
there while it is not due for refresh, else a new one, put there for
them. With store.type: memory, nothing outlives the run.`,
	example: "authproxy token redgifs --config proxy.yaml",
	flags: func(fs *flag.FlagSet, opts Options) func(context.Context, string) error {
		path := configFlag(fs, opts, "")
		show := fs.Bool("show", false, "print the access token itself")
		return func(ctx context.Context, name string) error { return token(ctx, name, *path, *show, opts) }
	},
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
func token(ctx context.Context, name, path string, show bool, opts Options) error {
	cfg, u, err := loadUpstream("token", name, path, opts)
	if err != nil {
		return err
	}
	logger := newLogger(config.Log{Level: "warn", Format: "text"}, opts)
	st, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer st.close()
	cache, err := newTokenSource(ctx, *u, st, logger.WithField("upstream", name), opts.Now, metrics.New(nil))
	if err != nil {
		return err
	}
	defer cache.Close()
	ctx, cancel := context.WithTimeout(ctx, u.Token.Timeout+5*time.Second)
	defer cancel()
	tok, err := cache.Token(ctx)
	if err != nil {
		return fmt.Errorf("authproxy token %s: %w", name, err)
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
	return nil
}
