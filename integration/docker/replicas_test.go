package docker

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReplicasProfile is the replicas profile as docs/replicas.md runs
// it: three replicas behind their own ports share one token per upstream,
// and one refresh token, through Redis; their state is looked at from the
// host; a login for them reaches them all; and the documented clean-up
// leaves nothing behind.
func TestReplicasProfile(t *testing.T) {
	requireDocker(t)
	requireFreePorts(t, 8181, 8182, 8183, 9191, 9192, 9193, 9105, 8085)
	p := newProject(t, "replicas")
	p.start(t, documented(t, "docker compose --profile replicas up --build replica"), nil)
	var replicas []string
	// --build: from the layer cache, or a build of its own when compose's
	// builder cannot use the suite's layers (minutes on a busy machine).
	eventually(t, 15*time.Minute, "three replicas", func() (bool, string) {
		replicas = p.containers(t, "replica")
		return len(replicas) == 3, fmt.Sprint(replicas)
	})
	if ids := p.containers(t, "authproxy"); len(ids) != 0 {
		t.Errorf("the single authproxy service was started too: %v", ids)
	}
	urls := map[string]string{} // container -> its published base URL
	for _, id := range replicas {
		var addr string
		eventually(t, time.Minute, "a published port", func() (bool, string) {
			out, err := execOutput("docker", "port", id, "8080")
			addr = out
			return err == nil && addr != "", out
		})
		if !strings.HasPrefix(addr, "127.0.0.1:818") {
			t.Fatalf("replica %s published on %s", id, addr)
		}
		urls[id] = "http://" + addr
		eventually(t, 2*time.Minute, addr+" answering", func() (bool, string) {
			status, body := get(urls[id] + "/no-such-upstream")
			return status == 404, body
		})
	}

	// 300 requests at once, cold, spread over the three ports and the
	// five upstreams.
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := map[string]int{}
	for i := range 300 {
		url := urls[replicas[i%3]] + upstreamPaths[i%len(upstreamPaths)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status, body := get(url); status != 200 || !strings.Contains(body, `"authenticated":true`) {
				mu.Lock()
				failed[fmt.Sprintf("%s: %d %.200s", url, status, body)]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for f, n := range failed {
		t.Errorf("%d× %s", n, f)
	}
	for name, s := range stats(t) {
		if s.TokenRequests != 1 {
			t.Errorf("%s: %d token requests for 300 requests on 3 replicas; want 1", name, s.TokenRequests)
		}
	}
	for _, line := range documentedAll(t, "curl http://127.0.0.1:818") {
		if out := p.run(t, line); !strings.Contains(out, `"authenticated":true`) {
			t.Errorf("%s: %s", line, out)
		}
	}

	t.Run("each replica's state, from the host", func(t *testing.T) {
		ps := p.run(t, documented(t, "docker compose --profile replicas ps replica"))
		for _, id := range replicas {
			proxyPort := strings.TrimPrefix(docker(t, "port", id, "8080"), "127.0.0.1:")
			adminPort := strings.TrimPrefix(docker(t, "port", id, "9090"), "127.0.0.1:")
			if !strings.HasPrefix(adminPort, "919") {
				t.Errorf("replica %s: admin endpoints published on %q; want one of 127.0.0.1:9191-9193", id, adminPort)
			}
			if !strings.Contains(ps, "127.0.0.1:"+proxyPort+"->8080/tcp") || !strings.Contains(ps, "127.0.0.1:"+adminPort+"->9090/tcp") {
				t.Errorf("ps does not show replica %s's ports %s and %s:\n%s", id, proxyPort, adminPort, ps)
			}
		}
		if out := p.run(t, documented(t, "curl http://127.0.0.1:9191/status")); !strings.Contains(out, `"upstream":"redbooth"`) || !strings.Contains(out, `"shared_store":"shared"`) {
			t.Errorf("/status: %s", out)
		}
		if out := p.run(t, documented(t, "curl http://127.0.0.1:9191/readyz")); !strings.Contains(out, `"ready":true`) {
			t.Errorf("/readyz: %s", out)
		}
		line := documented(t, "docker compose --profile replicas exec --index 2 replica /authproxy health")
		if out := p.run(t, line); !strings.Contains(out, "healthy: http://127.0.0.1:9090/readyz") {
			t.Errorf("%s: %s", line, out)
		}
	})

	// One replica dies; the others serve.
	docker(t, "kill", replicas[0])
	for _, id := range replicas[1:] {
		for _, path := range upstreamPaths {
			if status, body := get(urls[id] + path); status != 200 {
				t.Errorf("with a replica killed, %s%s: %d %s", urls[id], path, status, body)
			}
		}
	}

	// Redis restarts; the rotated refresh token must still be there, and
	// be redeemed once when the access token runs out.
	before := stats(t)["redbooth"]
	redis := p.container(t, "redis")
	start := time.Now()
	docker(t, "restart", redis)
	expireAccessTokens(t)
	took := eventually(t, 30*time.Second, "every upstream answering on the live replicas", func() (bool, string) {
		for _, id := range replicas[1:] {
			for _, path := range upstreamPaths {
				if status, body := get(urls[id] + path); status != 200 {
					return false, fmt.Sprintf("%s%s: %d %s", urls[id], path, status, body)
				}
			}
		}
		return true, ""
	})
	total := time.Since(start)
	t.Logf("Redis restarted: every upstream answered on the live replicas again %s after docker restart began (%s after it returned)",
		total.Round(100*time.Millisecond), took.Round(100*time.Millisecond))
	s := stats(t)["redbooth"]
	if s.Redemptions != before.Redemptions+1 || s.RedeemedTwice != 0 || s.InvalidGrants != 0 || s.Logins != 0 {
		t.Errorf("fake Redbooth after the Redis restart: %+v; want one more redemption, none twice, no invalid grant, no login (before: %+v)", s, before)
	}

	t.Run("a login for the replicas reaches them all", func(t *testing.T) {
		// The fakes restart and forget every token: Redis's refresh token
		// is dead, as when a user revokes the app.
		docker(t, "restart", p.container(t, "fakeapis"))
		for _, id := range replicas[1:] {
			eventually(t, time.Minute, "reauthorization_required", func() (bool, string) {
				status, body := get(urls[id] + "/redbooth/api/3/me")
				return status == 502 && strings.Contains(body, "reauthorization_required"), fmt.Sprint(status, " ", body)
			})
		}
		// Each live replica has tried the dead refresh token once, and been
		// refused: what the login must not cause is measured from here.
		before := stats(t)["redbooth"]
		loginFromContainer(t, p.shell, documented(t, "docker compose --profile replicas run --rm -p 127.0.0.1:8085:8085 replica login redbooth"))
		for _, id := range replicas[1:] {
			took := authenticated(t, 30*time.Second, urls[id]+"/redbooth/api/3/me")
			t.Logf("replica %s took the login's refresh token up after %s", id, took.Round(100*time.Millisecond))
		}
		// The login's refresh token is redeemed once, by one replica, for
		// the fleet; nothing more is refused.
		if s := stats(t)["redbooth"]; s.RedeemedTwice != before.RedeemedTwice || s.InvalidGrants != before.InvalidGrants || s.Redemptions != before.Redemptions+1 {
			t.Errorf("fake Redbooth before the login: %+v; after: %+v", before, s)
		}
	})

	t.Run("the documented clean-up leaves nothing behind", func(t *testing.T) {
		p.run(t, documented(t, "docker compose --profile replicas down -v"))
		if left := p.leftovers(t); len(left) > 0 {
			t.Errorf("after docker compose --profile replicas down -v: %q", left)
		}
	})
}
