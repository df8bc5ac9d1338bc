package integration

// Several replicas of the real binary share tokens through a real
// redis-server. Each replica is its own process, as in production, and the
// test process holds only the fake API and the clients.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakeapi"
	"github.com/authproxy/authproxy/internal/redistest"
	"github.com/authproxy/authproxy/internal/syncbuf"
)

// fleetEnv is n replicas in front of one fake API, sharing one Redis.
type fleetEnv struct {
	t        *testing.T
	api      *fakeapi.Server
	flavor   fakeapi.Flavor
	redis    *redistest.Server
	bin      string
	config   string
	replicas []*replicaProc
	client   *http.Client
}

type replicaProc struct {
	cmd   *exec.Cmd
	addr  string // the proxy's host:port
	admin string // the admin endpoints' base URL
	logs  *syncbuf.Buffer
	exit  chan error
}

// lockTTL is the replicas' store.lock_ttl: short, so that a dead holder's
// lock runs out within the test, and longer than the token timeout (2s).
const lockTTL = 3 * time.Second

// startFleet runs n replicas of the binary. storeYAML adds keys under
// store:; the token timeout is 2s; the default min_refresh_interval (500ms) leaves such tokens alone.
func startFleet(t *testing.T, f fakeapi.Flavor, n int, storeYAML string) *fleetEnv {
	t.Helper()
	fe := &fleetEnv{t: t, flavor: f, redis: redistest.Start(t), bin: buildBinary(t)}
	fe.api = fakeapi.New(f, clientID, clientSecret, nil)
	apiURL := newServer(t, fe.api)
	s := setup{
		// Sealed, so that the check at cleanup can demand no token in Redis.
		topYAML: fmt.Sprintf("store:\n  type: redis\n  url: %s\n  lock_ttl: %s\n  encryption_key: %s\n%s",
			fe.redis.URL(), lockTTL, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", storeYAML),
		// The tests' tokens live 1-2s: short lifetimes are believed.
		tokenYAML: "      timeout: 2s\n",
	}
	if f.ThreeLegged {
		s.tokenYAML += "      refresh_token: " + fe.api.SeedRefreshToken() + "\n"
	}
	fe.config = configFor(t, f, apiURL, s)
	tr := &http.Transport{MaxIdleConnsPerHost: 100}
	fe.client = &http.Client{Transport: tr, Timeout: time.Minute}
	for range n {
		fe.replicas = append(fe.replicas, fe.launch())
	}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		for i, r := range fe.replicas {
			if r.cmd.ProcessState == nil {
				r.cmd.Process.Signal(syscall.SIGTERM)
				if err := <-r.exit; err != nil {
					t.Errorf("replica %d: exit after SIGTERM: %v", i, err)
				}
			}
			fe.assertNoSecretsIn(fmt.Sprintf("replica %d's logs", i), r.logs.String())
			if t.Failed() {
				t.Logf("replica %d logs:\n%s", i, r.logs)
			}
		}
		fe.assertNoSecretsIn("redis", fe.redis.Dump())
	})
	return fe
}

func (fe *fleetEnv) launch() *replicaProc {
	fe.t.Helper()
	r := &replicaProc{logs: &syncbuf.Buffer{}, exit: make(chan error, 1)}
	r.cmd = exec.Command(fe.bin, "--config", fe.config)
	r.cmd.Env = os.Environ()
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		fe.t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		fe.t.Fatal(err)
	}
	addr, admin, logDone := listening(fe.t, stderr, r.logs)
	r.addr, r.admin = addr, "http://"+admin
	go func() {
		<-logDone // Wait only once the pipe is read to its end
		r.exit <- r.cmd.Wait()
	}()
	return r
}

func (fe *fleetEnv) assertNoSecretsIn(where, text string) {
	fe.t.Helper()
	for _, s := range fe.api.Secrets() {
		if s != "" && strings.Contains(text, s) {
			fe.t.Errorf("%s contain a secret or token (%.6s...)", where, s)
		}
	}
}

func (fe *fleetEnv) url(r *replicaProc) string {
	return "http://" + r.addr + "/" + fe.flavor.Name + fe.flavor.APIPath
}

// get sends one request through replica r and returns its status and body.
func (fe *fleetEnv) get(r *replicaProc) (int, string, error) {
	resp, err := fe.client.Get(fe.url(r))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// load sends requests through every replica from workers goroutines each
// until stop is called, which returns how many were answered and what
// went wrong with the others.
func (fe *fleetEnv) load(workers int) (stop func() (ok int, failures []string)) {
	var (
		done     = make(chan struct{})
		wg       sync.WaitGroup
		okCount  atomic.Int64
		mu       sync.Mutex
		failures []string
	)
	for _, r := range fe.replicas {
		for range workers {
			wg.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					status, body, err := fe.get(r)
					if err == nil && status == 200 {
						okCount.Add(1)
						continue
					}
					mu.Lock()
					if len(failures) < 20 {
						failures = append(failures, fmt.Sprintf("%s: %d %v %.300s", r.addr, status, err, body))
					}
					mu.Unlock()
				}
			})
		}
	}
	return func() (int, []string) {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return int(okCount.Load()), failures
	}
}

// trafficFor waits until the fake API has answered n more requests.
func (fe *fleetEnv) trafficFor(n int) {
	fe.t.Helper()
	at := len(fe.api.APIRequests())
	waitFor(fe.t, fmt.Sprintf("%d requests", n), func() bool { return len(fe.api.APIRequests()) >= at+n })
}

// metric reads one sample from a replica's /metrics; labels is the text
// between the braces, "" for none.
func (fe *fleetEnv) metric(r *replicaProc, name, labels string) float64 {
	fe.t.Helper()
	if labels != "" {
		name += "{" + labels + "}"
	}
	return scrape(fe.t, r.admin, name)
}

// sharedStore reads /status's shared_store for the fleet's upstream.
func (fe *fleetEnv) sharedStore(r *replicaProc) string {
	mode, _ := sharedStoreStatus(fe.t, r.admin)
	return mode
}

// TestReplicasColdStartFetchOneToken: 500 requests at once on each of 3
// cold replicas, all held inside the proxies until the one token request
// is answered, make exactly one token request.
func TestReplicasColdStartFetchOneToken(t *testing.T) {
	const perReplica = 500
	fe := startFleet(t, fakeapi.RedGIFs(), 3, "")
	openGate := gateTokens(t, fe.api)
	// Raw connections, read one after another: 1,500 HTTP clients'
	// goroutines on top of the fake API's would crowd the race detector.
	type pending struct {
		conn net.Conn
		req  *http.Request
	}
	var reqs []pending
	for _, r := range fe.replicas {
		for range perReplica {
			c, err := net.Dial("tcp", r.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req, _ := http.NewRequest("GET", fe.url(r), nil)
			if err := req.Write(c); err != nil {
				t.Fatal(err)
			}
			reqs = append(reqs, pending{c, req})
		}
	}
	for i, r := range fe.replicas {
		waitFor(t, fmt.Sprintf("replica %d to hold %d requests", i, perReplica), func() bool {
			return fe.metric(r, "authproxy_inflight_requests", "") == perReplica
		})
	}
	if n := fe.api.TokenRequests(); n != 1 {
		t.Fatalf("%d token requests while 3 x %d requests waited, want 1", n, perReplica)
	}
	openGate()
	failed := 0
	for _, p := range reqs {
		p.conn.SetReadDeadline(time.Now().Add(time.Minute))
		resp, err := http.ReadResponse(bufio.NewReader(p.conn), p.req)
		if err != nil || resp.StatusCode != 200 {
			failed++
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if failed > 0 {
		t.Errorf("%d of %d requests failed", failed, len(reqs))
	}
	if n := fe.api.TokenRequests(); n != 1 {
		t.Errorf("3 replicas x %d cold requests made %d token requests, want 1", perReplica, n)
	}
	var adopted, fetched float64
	for _, r := range fe.replicas {
		adopted += fe.metric(r, "authproxy_shared_token_fetches_total", `event="adopted",upstream="redgifs"`)
		fetched += fe.metric(r, "authproxy_shared_token_fetches_total", `event="fetched",upstream="redgifs"`)
	}
	if adopted != 2 || fetched != 1 {
		t.Errorf("metrics: %v adopted, %v fetched; want 2 and 1", adopted, fetched)
	}
}

// TestReplicasRevokedTokenRefreshedOnce: a token revoked while 3 replicas
// carry traffic is replaced by one token request, and no client sees the
// 401.
func TestReplicasRevokedTokenRefreshedOnce(t *testing.T) {
	fe := startFleet(t, fakeapi.RedGIFs(), 3, "")
	for _, r := range fe.replicas {
		if status, body, err := fe.get(r); status != 200 {
			t.Fatalf("warm-up: %d %v %s", status, err, body)
		}
	}
	if n := fe.api.TokenRequests(); n != 1 {
		t.Fatalf("warm-up made %d token requests", n)
	}
	stop := fe.load(8)
	fe.trafficFor(300)
	fe.api.RevokeAll()
	fe.trafficFor(1000)
	ok, failures := stop()
	if len(failures) > 0 {
		t.Errorf("%d requests answered, but some failed: %v", ok, failures)
	}
	if n := fe.api.TokenRequests(); n != 2 {
		t.Errorf("a revocation under load across 3 replicas made %d token requests, want 1", n-1)
	}
	var rejected float64
	for _, r := range fe.replicas {
		rejected += fe.metric(r, "authproxy_token_refreshes_total", `reason="401",upstream="redgifs"`)
	}
	if rejected != 1 {
		t.Errorf("%v fetches for a 401 across the fleet, want 1", rejected)
	}
}

// TestReplicasRedeemEachRefreshTokenOnce: with traffic on all 3 replicas,
// 20 rotations of a refresh token, 10 ahead of expiry and 10 after a
// revocation, redeem each refresh token exactly once. The fake retires a
// refresh token at its first redemption, so a second one would fail.
func TestReplicasRedeemEachRefreshTokenOnce(t *testing.T) {
	f := fakeapi.Redbooth()
	f.ExpiresIn = time.Second // refreshed ahead of expiry every half second
	fe := startFleet(t, f, 3, "")
	for _, r := range fe.replicas {
		if status, body, err := fe.get(r); status != 200 {
			t.Fatalf("warm-up: %d %v %s", status, err, body)
		}
	}
	stop := fe.load(4)
	rotations := func() int { return len(fe.api.Redemptions()) - 1 }
	waitFor(t, "10 rotations ahead of expiry", func() bool { return rotations() >= 10 })
	// Then long-lived tokens, so that revocations do not meet a refresh:
	// one that comes right after a refresh also fails the replays that
	// carry the token fetched just before it, in one process as in
	// several (see README).
	fe.api.SetExpiresIn(time.Hour)
	n := rotations()
	waitFor(t, "a long-lived token", func() bool { return rotations() > n })
	for rotations() < 20 {
		fe.trafficFor(300) // every replica on the newest token
		n := rotations()
		fe.api.RevokeAll()
		waitFor(t, "a rotation after a revocation", func() bool { return rotations() > n })
	}
	ok, failures := stop()
	if len(failures) > 0 {
		t.Errorf("%d requests answered, but some failed: %v", ok, failures)
	}
	for rt, n := range fe.api.Redemptions() {
		if n != 1 {
			t.Errorf("refresh token %.14s... redeemed %d times", rt, n)
		}
	}
	t.Logf("%d rotations, %d requests answered", rotations(), ok)
}

// TestReplicasTakeOverFromADeadLockHolder: the replica holding the fetch
// lock is killed mid-request; another takes over once the lock runs out,
// and the requests waiting on the live replicas succeed.
func TestReplicasTakeOverFromADeadLockHolder(t *testing.T) {
	fe := startFleet(t, fakeapi.RedGIFs(), 3, "")
	openGate := gateTokens(t, fe.api)
	type result struct {
		replica int
		status  int
		err     error
	}
	results := make(chan result, 3)
	for i, r := range fe.replicas {
		go func() {
			status, _, err := fe.get(r)
			results <- result{i, status, err}
		}()
	}
	waitFor(t, "the first token request", func() bool { return fe.api.TokenRequests() == 1 })
	lockKey := ""
	waitFor(t, "the lock in redis", func() bool {
		keys := fe.redis.Client().Keys(t.Context(), "authproxy:*:lock").Val()
		if len(keys) == 1 {
			lockKey = keys[0]
		}
		return lockKey != ""
	})
	owner := fe.redis.Client().Get(t.Context(), lockKey).Val() // host:pid:random
	parts := strings.Split(owner, ":")
	pid, _ := strconv.Atoi(parts[len(parts)-2])
	holder := -1
	for i, r := range fe.replicas {
		if r.cmd.Process.Pid == pid {
			holder = i
		}
	}
	if holder < 0 {
		t.Fatalf("the lock's owner %q is none of the replicas", owner)
	}
	// Every replica is waiting: the holder on the endpoint, the others on
	// the holder.
	for i, r := range fe.replicas {
		waitFor(t, fmt.Sprintf("replica %d's request", i), func() bool {
			return fe.metric(r, "authproxy_inflight_requests", "") == 1
		})
	}
	fe.replicas[holder].cmd.Process.Kill()
	killed := time.Now()
	<-fe.replicas[holder].exit
	fe.api.SetTokenGate(nil)
	openGate()
	for range 3 {
		res := <-results
		if res.replica == holder {
			continue // its client lost its connection with it
		}
		if res.err != nil || res.status != 200 {
			t.Errorf("replica %d: %d %v", res.replica, res.status, res.err)
		}
	}
	recovered := time.Since(killed)
	if n := fe.api.TokenRequests(); n != 2 {
		t.Errorf("%d token requests, want the dead holder's and one more", n)
	}
	// Within the lock's TTL, which ran from before the kill, plus the
	// waiters' poll and the token request itself.
	if recovered > lockTTL+time.Second {
		t.Errorf("recovery took %v, more than the lock TTL %v", recovered, lockTTL)
	}
	t.Logf("replica %d held the lock and was killed; the others had tokens %v later (lock TTL %v)", holder, recovered.Round(time.Millisecond), lockTTL)
}

// TestReplicasRideOutARedisRestart: Redis stops and comes back while 3
// replicas carry traffic, their tokens expire every 2s and are revoked
// once in the outage: no client request fails. Meanwhile /status and the
// metrics say the replicas fetch alone, and afterwards that they share
// again.
func TestReplicasRideOutARedisRestart(t *testing.T) {
	f := fakeapi.RedGIFs()
	f.ExpiresIn = 2 * time.Second
	fe := startFleet(t, f, 3, "")
	for _, r := range fe.replicas {
		if status, body, err := fe.get(r); status != 200 {
			t.Fatalf("warm-up: %d %v %s", status, err, body)
		}
	}
	stop := fe.load(4)
	fe.trafficFor(300)
	fe.redis.Stop()
	down := fe.api.TokenRequests()
	for i, r := range fe.replicas {
		waitFor(t, fmt.Sprintf("replica %d to report the fallback", i), func() bool { return fe.sharedStore(r) == "fallback" })
		if up := fe.metric(r, "authproxy_shared_store_up", `upstream="redgifs"`); up != 0 {
			t.Errorf("replica %d: authproxy_shared_store_up %v while Redis is down", i, up)
		}
	}
	fe.api.RevokeAll()
	for i, r := range fe.replicas {
		waitFor(t, fmt.Sprintf("replica %d to fetch alone again", i), func() bool {
			return fe.metric(r, "authproxy_shared_token_fetches_total", `event="fallback",upstream="redgifs"`) >= 3
		})
	}
	fe.trafficFor(300)
	fe.redis.Restart()
	for i, r := range fe.replicas {
		waitFor(t, fmt.Sprintf("replica %d to share again", i), func() bool { return fe.sharedStore(r) == "shared" })
	}
	fe.trafficFor(300)
	ok, failures := stop()
	if len(failures) > 0 {
		t.Errorf("%d requests answered, but %d+ failed: %v", ok, len(failures), failures)
	}
	var fallbacks float64
	for _, r := range fe.replicas {
		fallbacks += fe.metric(r, "authproxy_shared_token_fetches_total", `event="fallback",upstream="redgifs"`)
		if up := fe.metric(r, "authproxy_shared_store_up", `upstream="redgifs"`); up != 1 {
			t.Errorf("authproxy_shared_store_up %v after Redis came back", up)
		}
	}

	t.Logf("%d requests answered; %d token requests with Redis down, %v fallback fetches", ok, fe.api.TokenRequests()-down, fallbacks)
}
