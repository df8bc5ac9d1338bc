package app

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/authproxy/authproxy/auth"
	"golang.org/x/oauth2"
)

// loginFlow is one login's state: what the authorize URL asked for, how
// the code is to be exchanged, and whether a redirect has taken it.
type loginFlow struct {
	settings        auth.Settings
	redirectURI     string
	timeout         time.Duration // of the code exchange: token.timeout
	state, verifier string
	store           auth.Store
	// ignored is told of each redirect that is not this login's; it must
	// not quote the redirect's values.
	ignored func(r *http.Request)

	// done receives the outcome of the one redirect that took the login.
	done chan error
	// taken is set by the first redirect with the right state: an
	// authorization code is redeemed once (RFC 6749 4.1.2: the server
	// refuses a second redemption and should revoke what the first gave,
	// the refresh token login has just stored).
	taken atomic.Bool
	// reached counts every request to the listener (none at all hints at
	// a browser that cannot reach it, as from outside a container); forged
	// counts the redirects ignored.
	reached, forged atomic.Int32
}

func newLoginFlow(settings auth.Settings, redirectURI string, timeout time.Duration, store auth.Store) *loginFlow {
	return &loginFlow{settings: settings, redirectURI: redirectURI, timeout: timeout, store: store,
		state: randomState(), verifier: oauth2.GenerateVerifier(), done: make(chan error, 1), ignored: func(*http.Request) {}}
}

// handler serves redirect_uri's path; ctx bounds the code exchange, which
// the browser going away must not cut short.
func (f *loginFlow) handler(ctx context.Context, path string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		// A page the user has open, a local process, or anyone who reaches
		// --listen can send a request here; only the authorization server's
		// redirect carries the state, so anything else is ignored rather
		// than allowed to end the login (RFC 6749 10.12).
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.state)) != 1 {
			f.forged.Add(1)
			f.ignored(r)
			loginPage(w, http.StatusBadRequest, "authproxy login ignored this redirect",
				"Its state is not the one of the login under way: it is stale (from an earlier login) or forged. The login goes on waiting; open the URL that authproxy login printed.")
			return
		}
		if !f.taken.CompareAndSwap(false, true) {
			loginPage(w, http.StatusConflict, "authproxy login is already complete or under way",
				"An earlier redirect (a retry, a reload) took this login; the terminal where authproxy login runs tells its outcome. You can close this window.")
			return
		}
		err := f.complete(ctx, q)
		if err != nil {
			loginPage(w, http.StatusBadRequest, "authproxy login failed", err.Error())
		} else {
			loginPage(w, http.StatusOK, "authproxy is logged in", "You can close this window.")
		}
		f.done <- err // once: only the redirect that took the login gets here
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.reached.Add(1)
		mux.ServeHTTP(w, r)
	})
}

// complete exchanges the code of the redirect that took the login (its
// state checked) and stores the tokens, or says what the authorization
// server answered instead.
func (f *loginFlow) complete(ctx context.Context, q url.Values) error {
	if e := q.Get("error"); e != "" {
		return fmt.Errorf("the authorization server answered %s: %s", e, q.Get("error_description"))
	}
	code := q.Get("code")
	if code == "" {
		return errors.New("the redirect carried neither a code nor an error")
	}
	exchangeCtx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	return auth.Login(exchangeCtx, f.settings, auth.Options{Store: f.store}, code, f.verifier, f.redirectURI)
}

func loginPage(w http.ResponseWriter, status int, title, text string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<h1>%s</h1><p>%s</p>", html.EscapeString(title), html.EscapeString(text))
}

func randomState() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
