package integration

import (
	"bufio"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/fakeapi"
	"github.com/authproxy/authproxy/internal/syncbuf"
)

// TestKill9DuringRefreshesAlwaysRecovers kills the real binary with
// SIGKILL at random points while it rotates refresh tokens, 60 times, and
// checks that every restart gets going again from the store alone, without
// a login.
//
// The fake revokes a redeemed refresh token when the new access token is
// first used, as Doorkeeper (Redbooth's server) does with
// refresh_token_revoked_on_use. The proxy saves the new refresh token
// before using the new access token, so at every instant the store holds
// a refresh token that still works. (With a server that revokes on
// redemption, a crash after the server rotates and before the answer is
// saved is unrecoverable by any client; see docs/user-apis.md.)
func TestKill9DuringRefreshesAlwaysRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary 60 times")
	}
	bin := buildBinary(t)
	f := fakeapi.Redbooth()
	f.ExpiresIn = time.Second // a refresh every ~500ms
	api := fakeapi.New(f, clientID, clientSecret, nil)
	api.SetRevokeOnUse(true)
	apiURL := newServer(t, api)
	config := configFor(t, f, apiURL, setup{tokenYAML: "      refresh_token: " + api.SeedRefreshToken() + "\n      refresh_before: 10m\n"})

	var (
		running       atomic.Pointer[os.Process]
		killsMidFetch atomic.Int32
		killsAfter    atomic.Int32
	)
	api.OnRefresh(func(string) {
		p := running.Load()
		if p == nil {
			return
		}
		switch rand.IntN(4) {
		case 0: // the server has the redemption; the proxy never sees the answer
			if running.CompareAndSwap(p, nil) {
				p.Kill()
				killsMidFetch.Add(1)
			}
		case 1: // while the proxy reads and saves the answer
			time.AfterFunc(time.Duration(rand.IntN(2000))*time.Microsecond, func() {
				if running.CompareAndSwap(p, nil) {
					p.Kill()
					killsAfter.Add(1)
				}
			})
		}
	})

	client := &http.Client{Timeout: 5 * time.Second}
	const rounds = 60
	for round := range rounds {
		cmd := exec.Command(bin, "--config", config)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		logs := &syncbuf.Buffer{}
		addr, _, _ := listening(t, stderr, logs)
		// Recovery: a request must succeed with what the store holds.
		deadline := time.Now().Add(15 * time.Second)
		for {
			resp, err := client.Get("http://" + addr + "/redbooth" + f.APIPath)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
				if strings.Contains(string(body), "reauthorization_required") {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("round %d: locked out after a kill -9: %s\n%s", round, body, logs)
				}
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("round %d: no successful request after restart: %v\n%s", round, err, logs)
			}
			time.Sleep(5 * time.Millisecond)
		}
		// Traffic until the kill: from a refresh hook, or at a random time.
		running.Store(cmd.Process)
		stopAt := time.After(time.Duration(50+rand.IntN(700)) * time.Millisecond)
		var wg sync.WaitGroup
		done := make(chan struct{})
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-done:
						return
					default:
					}
					if resp, err := client.Get("http://" + addr + "/redbooth" + f.APIPath); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					} else {
						return // killed
					}
				}
			}()
		}
		<-stopAt
		if p := running.Load(); p != nil && running.CompareAndSwap(p, nil) {
			p.Kill()
		}
		close(done)
		wg.Wait()
		cmd.Wait()
	}
	redeemedTwice := 0
	for _, n := range api.Redemptions() {
		if n > 1 {
			redeemedTwice++
		}
	}
	t.Logf("%d rounds, %d refreshes; killed %d times while the token endpoint held the redemption, %d times while the answer was being saved; %d refresh tokens redeemed again after a crash",
		rounds, api.TokenRequests(), killsMidFetch.Load(), killsAfter.Load(), redeemedTwice)
	if killsMidFetch.Load() == 0 || killsAfter.Load() == 0 {
		t.Error("no kill landed inside a refresh: the test did not test what it says")
	}
}

// listening reads the proxy's JSON log until it says where it listens
// and where its admin endpoints do, and keeps copying the rest into logs;
// logDone is closed when the log ends (the process has exited, or is
// about to).
func listening(t *testing.T, stderr io.Reader, logs *syncbuf.Buffer) (addr, admin string, logDone <-chan struct{}) {
	t.Helper()
	sc := bufio.NewScanner(stderr)
	// A log line past Scanner's 64 KiB default would stop the reading,
	// and the proxy would block writing its log: a hang, not a failure.
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		logs.Write([]byte(sc.Text() + "\n"))
		var line struct{ Msg, Addr, Admin string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "authproxy listening" {
			done := make(chan struct{})
			go func() {
				defer close(done)
				for sc.Scan() {
					logs.Write([]byte(sc.Text() + "\n"))
				}
			}()
			return line.Addr, line.Admin, done
		}
	}
	t.Fatalf("the proxy never said where it listens:\n%s", logs)
	return "", "", nil
}
