package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"github.com/authproxy/authproxy/config"
	"golang.org/x/oauth2"
)

// loginTimeout bounds the wait for the browser to come back.
const loginTimeout = 10 * time.Minute

// containerMarker is the file Docker puts at the root of a container; a
// variable for tests.
var containerMarker = "/.dockerenv"

// loginCommand is `authproxy login NAME`: the first refresh token of a
// refresh_token upstream, from a browser.
var loginCommand = command{
	name: "login", args: "NAME --config FILE [--no-browser] [--listen ADDR]", operand: upstreamName, needsConfig: true,
	summary: "get the first refresh token for an upstream with grant_type: refresh_token",
	about: `Authorize the upstream NAME in a browser: print its authorize URL, wait
on its redirect_uri for the browser to come back, exchange the code and
save the refresh token in the store, where the proxy finds it. In a
container, listen on 0.0.0.0 with the port published, as the browser on
the host opens redirect_uri on 127.0.0.1.`,
	example: "authproxy login redbooth --config proxy.yaml --no-browser",
	flags: func(fs *flag.FlagSet, opts Options) func(context.Context, string) error {
		path := configFlag(fs, opts, "")
		noBrowser := fs.Bool("no-browser", false, "only print the URL; do not try to open a browser")
		var listen hostPortFlag
		fs.Var(&listen, "listen", "the `ADDR`, host:port, to listen on for the browser's redirect (default: redirect_uri's host:port); in a container 0.0.0.0:PORT, with the port published")
		return func(ctx context.Context, name string) error {
			return login(ctx, name, *path, !*noBrowser, string(listen), opts)
		}
	},
}

// login runs the authorization-code flow for one upstream: it prints the
// authorize URL (with state and a PKCE challenge), waits on redirect_uri
// for the browser to come back, exchanges the code and stores the tokens
// where the proxy will find them. listen, if set, is where it waits
// instead of redirect_uri's host:port: in a container, 127.0.0.1 is the
// container's own, which the browser's redirect through a published port
// never reaches.
func login(ctx context.Context, name, path string, openBrowser bool, listen string, opts Options) error {
	var stderr sync.Mutex // redirects are served, and noted, concurrently
	note := func(format string, args ...any) {
		stderr.Lock()
		defer stderr.Unlock()
		fmt.Fprintf(opts.Stderr, "authproxy login %s: %s\n", name, fmt.Sprintf(format, args...))
	}
	cfg, up, err := loadUpstream("login", name, path, opts)
	if err != nil {
		return err
	}
	redirect, err := loginRedirect(name, up)
	if err != nil {
		return err
	}
	stores, err := openStore(ctx, cfg, newLogger(config.Log{Level: "warn", Format: "text"}, opts))
	if err != nil {
		return loginFailed(name, err)
	}
	defer stores.close()
	ln, listen, inContainer, err := listenForRedirect(listen, redirect, note)
	if err != nil {
		return loginFailed(name, err)
	}

	// x/oauth2 only builds the authorize URL; the code goes to the token
	// endpoint as every token request does (no redirects followed, the
	// configured body format and params, secrets redacted from errors).
	oc := &oauth2.Config{
		ClientID: up.Token.ClientID, Scopes: up.Token.Scopes, RedirectURL: up.Token.RedirectURI,
		Endpoint: oauth2.Endpoint{AuthURL: up.Token.AuthorizeURL},
	}
	flow := newLoginFlow(tokenSettings(*up), up.Token.RedirectURI, up.Token.Timeout, stores.store)
	flow.ignored = func(r *http.Request) {
		note("ignored a redirect from %s whose state is not this login's (stale or forged); still waiting for the browser's", r.RemoteAddr)
	}
	authURL := oc.AuthCodeURL(flow.state, oauth2.S256ChallengeOption(flow.verifier))
	fmt.Fprintf(opts.Stdout, "Open this URL in a browser, sign in and allow access:\n\n  %s\n\nWaiting for the redirect to %s ...\n", authURL, up.Token.RedirectURI)
	if openBrowser {
		tryOpenBrowser(authURL, opts.getenv)
	}
	// What came of it is said while the redirect's server still runs,
	// before its graceful shutdown (deferred), as notes are.
	stop, err := awaitRedirect(ctx, flow, ln, redirect, listen, inContainer)
	defer stop()
	if err != nil {
		note("%v", err) // loginFailed's words, through note's lock
		return said(loginFailed(name, err))
	}
	fmt.Fprintf(opts.Stdout, "%s\n", loggedIn(name, cfg.Store))
	return nil
}

// loginFailed is a failure of what login tried (exit 1), in login's words.
func loginFailed(name string, err error) error {
	return fmt.Errorf("authproxy login %s: %w", name, err)
}

// loginRedirect is the upstream's redirect_uri, which login waits on; a
// refusal (exit 2, a config mistake as in every command) if login cannot
// log in to it.
func loginRedirect(name string, up *config.Upstream) (*url.URL, error) {
	refuse := func(format string, args ...any) error {
		return refusef("authproxy login %s: %s", name, fmt.Sprintf(format, args...))
	}
	redirect, _ := url.Parse(up.Token.RedirectURI) // validated by config
	switch {
	case up.Token.GrantType != "refresh_token":
		return nil, refuse("upstreams.%s.token.grant_type is %s; login is for grant_type: refresh_token", name, up.Token.GrantType)
	case up.Token.AuthorizeURL == "":
		return nil, refuse("set upstreams.%s.token.authorize_url to the API's authorization endpoint", name)
	case redirect.Port() == "":
		return nil, refuse("upstreams.%s.token.redirect_uri needs a port, e.g. http://127.0.0.1:8085/callback", name)
	}
	return redirect, nil
}

// listenForRedirect listens where the browser's redirect comes, and says
// where that is: listen, else redirect_uri's host:port. In a container of its own network,
// 127.0.0.1 is the container's: a browser outside it cannot reach the
// login there, one inside it (or with --network host) can. Which it is
// cannot be told from here, so this is said as a possibility now
// (inContainer), and as the likely cause if nothing came back.
func listenForRedirect(listen string, redirect *url.URL, note func(string, ...any)) (_ net.Listener, addr string, inContainer bool, _ error) {
	if listen == "" {
		listen = redirect.Host
		if _, err := os.Stat(containerMarker); err == nil && (redirect.Hostname() == "localhost" || net.ParseIP(redirect.Hostname()).IsLoopback()) {
			inContainer = true
			note("this may run in a container (%s exists). If the browser runs outside it, its redirect to %s cannot reach this login, which waits on the container's own %s: then publish the port and give --listen 0.0.0.0:%s. A browser or curl in the same container reaches it as is.",
				containerMarker, redirect.Host, redirect.Hostname(), redirect.Port())
		}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, "", false, fmt.Errorf("cannot listen for the redirect on %s: %v", listen, err)
	}
	return ln, listen, inContainer, nil
}

// awaitRedirect serves flow on ln until a redirect took the login and its
// exchange ended, or loginTimeout passed, or ctx was done. The server
// still runs when it returns: stop shuts it down gracefully, so that the
// browser gets its page, and waits for it.
func awaitRedirect(ctx context.Context, flow *loginFlow, ln net.Listener, redirect *url.URL, listen string, inContainer bool) (stop func(), err error) {
	waitCtx, cancel := context.WithTimeout(ctx, loginTimeout)
	srv := &http.Server{Handler: flow.handler(waitCtx, redirect.Path), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	stop = func() {
		shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancelShutdown()
		srv.Shutdown(shutdownCtx)
		<-served
		cancel()
	}

	select {
	case err = <-flow.done:
	case <-waitCtx.Done():
		if flow.taken.Load() {
			// A redirect took the login: its exchange, cut short by the same
			// context, is what happened.
			return stop, <-flow.done
		}
		err = errors.New("no redirect came back within " + loginTimeout.String())
		if ctx.Err() != nil {
			err = errors.New("stopped before a redirect came back")
		}
		if n := flow.forged.Load(); n > 0 {
			err = fmt.Errorf("%w (%d whose state was not this login's ignored)", err, n)
		}
		if inContainer && flow.reached.Load() == 0 {
			err = fmt.Errorf("%w; nothing reached %s: if the browser runs outside this container, publish the port and give --listen 0.0.0.0:%s", err, listen, redirect.Port())
		}
	}
	return stop, err
}

// tryOpenBrowser opens url where a desktop is likely; the printed URL is
// the fallback either way.
func tryOpenBrowser(u string, getenv func(string) string) {
	var cmd string
	switch {
	case runtime.GOOS == "darwin":
		cmd = "open"
	case getenv("DISPLAY") != "" || getenv("WAYLAND_DISPLAY") != "":
		cmd = "xdg-open"
	default:
		return
	}
	if p, err := exec.LookPath(cmd); err == nil {
		exec.Command(p, u).Start()
	}
}

// loggedIn says where the refresh token went, and who will use it.
func loggedIn(name string, st config.Store) string {
	switch st.Type {
	case "memory":
		return fmt.Sprintf("Logged in to %s, but the refresh token was kept in memory only (store.type is memory) and is lost as this command exits: no proxy will use it. "+
			"Set store.type: file (store.path) or redis in the config, which the proxy reads too, and run authproxy login again.", name)
	case "redis":
		return fmt.Sprintf("Logged in to %s. The refresh token is stored in Redis at %s; every proxy whose store.url names that Redis (and store.key_prefix %s) refreshes it from here on, across restarts.",
			name, redisWhere(st), st.KeyPrefix)
	}
	return fmt.Sprintf("Logged in to %s. The refresh token is stored in %s; authproxy refreshes it from here on, across restarts.", name, st.Path)
}

// redisWhere names the Redis of store.url without what may be secret: no
// user or password, no query.
func redisWhere(st config.Store) string {
	u, err := url.Parse(st.URL.Reveal())
	if err != nil { // validated by config
		return "store.url"
	}
	where := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	switch st.Mode {
	case "sentinel":
		where = fmt.Sprintf("%s's master %s, through its sentinels", where, u.Query().Get("master_name"))
	case "cluster":
		where += " (a cluster)"
	}
	return where
}
