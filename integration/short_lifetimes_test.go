package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakeapi"
)

// TestShortHonestLifetimesNeverReachTheAPIExpired (issue 21 item 1): the
// 30 s lifetime floor had a 3 s token used for 30 s, so from its 3rd
// second on every generation's first request was refused by the API and
// waited for the token endpoint on its own path. The built binary runs in
// front of fakes that reject an expired token, as every real API does,
// whose token endpoint issues the token when the request arrives and
// answers 30% of its lifetime later, with lifetimes of 1 to 5 s and 25
// requests a second for three lifetimes: no request may reach the API
// with an expired token, and every token after the first must come from
// a background refresh ("expiry"), never from a request that found none
// valid ("expired") or one the API refused ("rejected").
func TestShortHonestLifetimesNeverReachTheAPIExpired(t *testing.T) {
	if testing.Short() {
		t.Skip("sends traffic for up to 15 s")
	}
	bin := buildBinary(t)
	for _, tt := range []struct {
		flavor   fakeapi.Flavor
		lifetime time.Duration
	}{
		{fakeapi.RedGIFs(), time.Second},
		{fakeapi.RedGIFs(), 2 * time.Second},
		{fakeapi.RedGIFs(), 3 * time.Second},
		{fakeapi.TeenQuotes(), 3 * time.Second},
		{fakeapi.Redbooth(), 4 * time.Second}, // a refresh token that rotates on every use
		{fakeapi.RedGIFs(), 5 * time.Second},
	} {
		t.Run(tt.flavor.Name+"/"+tt.lifetime.String(), func(t *testing.T) {
			t.Parallel()
			f := tt.flavor
			f.ExpiresIn = tt.lifetime
			api := fakeapi.New(f, clientID, clientSecret, nil)
			var tokenYAML string
			if f.ThreeLegged {
				tokenYAML = "      refresh_token: " + api.SeedRefreshToken() + "\n"
			}
			apiURL := newServer(t, slowTokenEndpoint(api, f.TokenPath, tt.lifetime*3/10))
			p := runBinary(t, bin, configFor(t, f, apiURL, setup{tokenYAML: tokenYAML}))

			client := &http.Client{Timeout: 30 * time.Second}
			var slowest time.Duration // after the first request, which waits for the first token
			var failed []string
			first := true
			tick := time.NewTicker(40 * time.Millisecond) // 25 requests a second
			defer tick.Stop()
			for end := time.Now().Add(3 * tt.lifetime); time.Now().Before(end); <-tick.C {
				start := time.Now()
				resp, err := client.Get("http://" + p.addr + "/" + f.Name + f.APIPath)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if !first {
					slowest = max(slowest, time.Since(start))
				}
				first = false
				if resp.StatusCode != http.StatusOK {
					failed = append(failed, resp.Status)
				}
			}
			refused := 0
			for _, r := range api.APIRequests() {
				if !r.Authorized {
					refused++
				}
			}
			reasons := fetchReasons(t, p.logs.String())
			t.Logf("%s tokens, token endpoint answering after %s: %d token requests %v, %d refused by the API, slowest request %s",
				tt.lifetime, tt.lifetime*3/10, api.TokenRequests(), reasons, refused, slowest.Round(time.Millisecond))
			if refused > 0 || len(failed) > 0 {
				t.Errorf("the API refused %d requests as unauthorized; the clients got %d failures %v", refused, len(failed), failed)
			}
			if reasons["expired"]+reasons["rejected"] > 0 || reasons["expiry"] < 3 {
				t.Errorf("token requests by reason %v: want a background refresh (expiry) every half lifetime and none on a request's path", reasons)
			}
		})
	}
}

// slowTokenEndpoint serves api, whose token endpoint at tokenPath issues
// the token as the request arrives and answers delay later: its lifetime
// runs from before the proxy hears of it.
func slowTokenEndpoint(api http.Handler, tokenPath string, delay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != tokenPath {
			api.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, r)
		time.Sleep(delay) // the endpoint's own slowness, not a test's wait
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

// fetchReasons counts the proxy's "token fetched" log lines by reason.
func fetchReasons(t *testing.T, logs string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for line := range strings.Lines(logs) {
		var l struct{ Msg, Reason string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "token fetched" {
			out[l.Reason]++
		}
	}
	return out
}

// TestATinyLifetimeCostsAFewTokenRequests: expires_in 0.2 once cost a
// token request for nearly every request. Through the binary, 200
// requests sent over 2 s (one every 10 ms, each on its own, as a busy app
// sends them) cost at most 5 token requests, and still none reaches the
// API with an expired token: the requests after a token expires wait for
// the next one (min_refresh_interval, 500ms). A client that sends one
// request at a time is slowed by those waits instead, and gets a token
// per 200 ms of its traffic: a token is never stretched past its expiry.
func TestATinyLifetimeCostsAFewTokenRequests(t *testing.T) {
	f := fakeapi.RedGIFs()
	f.ExpiresIn = 200 * time.Millisecond
	api := fakeapi.New(f, clientID, clientSecret, nil)
	p := runBinary(t, buildBinary(t), configFor(t, f, newServer(t, api), setup{}))
	client := &http.Client{Timeout: 30 * time.Second}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []int
	first := time.Now()
	var last time.Time
	for range 200 {
		last = time.Now()
		wg.Go(func() {
			resp, err := client.Get("http://" + p.addr + "/" + f.Name + f.APIPath)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				mu.Lock()
				failed = append(failed, resp.StatusCode)
				mu.Unlock()
			}
		})
		<-tick.C
	}
	wg.Wait()
	refused := 0
	for _, r := range api.APIRequests() {
		if !r.Authorized {
			refused++
		}
	}
	// Token requests start at least min_refresh_interval apart, from the
	// first request to the last one's wait: over 2 s of sending that is
	// 5. A loaded machine may send the last ones late, so the bound is
	// the design's for the span the requests really took.
	span := last.Sub(first)
	allowed := 2 + int(span/(500*time.Millisecond))
	t.Logf("expires_in 0.2, 200 requests over %s: %d token requests (at most %d), %d refused by the API", span.Round(time.Millisecond), api.TokenRequests(), allowed, refused)
	if n := api.TokenRequests(); n > allowed || refused > 0 || len(failed) > 0 {
		t.Errorf("%d token requests (want at most %d for requests sent over %s), %d requests refused by the API (want none), failures %v", n, allowed, span, refused, failed)
	}
}
