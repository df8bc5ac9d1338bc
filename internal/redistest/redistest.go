// Package redistest runs a real redis-server on loopback for tests: one
// per test, on a port of its own, with its data in the test's temporary
// directory, so that tests can stop and restart it without disturbing
// each other.
//
// Without a redis-server on PATH the test is skipped, unless
// AUTHPROXY_REQUIRE_REDIS is set (as .ci/run does): then it fails, so that
// CI can never pass by skipping the shared-store tests.
package redistest

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authproxy/authproxy/internal/skipreport"
)

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string // extra arguments: --sentinel, --cluster-enabled
	cmd  *exec.Cmd

	client *redis.Client
}

// Start runs redis-server until the test ends. It persists every write to
// an append-only file, fsynced, as docs/replicas.md tells users with
// refresh-token upstreams to do, so a Restart keeps the data.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t)
}

func start(t testing.TB, args ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("AUTHPROXY_REQUIRE_REDIS") != "" {
			t.Fatal("redis-server is not installed, and AUTHPROXY_REQUIRE_REDIS is set; install it: apt-get install redis-server")
		}
		skipreport.Skip(t, "redis-server is not installed (apt-get install redis-server)",
			"redis-server is not installed (apt-get install redis-server); .ci/run installs it")
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), args: args}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// StartSentinel runs a master and a sentinel watching it under the name
// "mymaster", and returns the sentinel.
func StartSentinel(t testing.TB) (master, sentinel *Server) {
	t.Helper()
	master = Start(t)
	sentinel = start(t, "--sentinel")
	for _, cmd := range [][]any{
		{"sentinel", "monitor", "mymaster", "127.0.0.1", master.port, 1},
		{"sentinel", "set", "mymaster", "down-after-milliseconds", 1000},
	} {
		if err := sentinel.Client().Do(t.Context(), cmd...).Err(); err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
	}
	return master, sentinel
}

// StartCluster runs a Redis Cluster of n masters (no replicas) with the
// hash slots split between them, and returns its nodes once the cluster
// says it is ok.
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	nodes := make([]*Server, n)
	for i := range nodes {
		nodes[i] = start(t, "--cluster-enabled", "yes", "--cluster-node-timeout", "2000")
	}
	ctx := t.Context()
	for i, node := range nodes {
		c := node.Client()
		from, to := i*16384/n, (i+1)*16384/n-1
		if err := c.Do(ctx, "cluster", "addslotsrange", from, to).Err(); err != nil {
			t.Fatalf("cluster addslotsrange: %v", err)
		}
		if i > 0 {
			if err := c.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(nodes[0].port)).Err(); err != nil {
				t.Fatalf("cluster meet: %v", err)
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, node := range nodes {
		for !strings.Contains(node.Client().ClusterInfo(ctx).Val(), "cluster_state:ok") {
			if time.Now().After(deadline) {
				t.Fatalf("the cluster never became ok: %s", node.Client().ClusterInfo(ctx).Val())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nodes
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is the redis:// URL of database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Stop shuts the server down (SIGTERM, which flushes the append-only
// file) and waits for it to exit. It is safe to call again.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// Restart starts the server again on the same port and data (or for the
// first time), and returns once it accepts commands.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port), "--dir", s.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--protected-mode", "yes", "--logfile", filepath.Join(s.dir, "redis.log")}
	if slices.Contains(s.args, "--sentinel") {
		// A sentinel rewrites its config file, and will not run without one.
		conf := filepath.Join(s.dir, "sentinel.conf")
		if _, err := os.Stat(conf); err != nil {
			os.WriteFile(conf, nil, 0o600)
		}
		args = []string{conf, "--sentinel", "--bind", "127.0.0.1", "--port", strconv.Itoa(s.port), "--dir", s.dir,
			"--logfile", filepath.Join(s.dir, "redis.log")}
	} else {
		args = append(args, s.args...)
	}
	s.cmd = exec.Command(s.bin, args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if s.ping() {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("redis-server on %s did not answer PING:\n%s", s.Addr(), log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client returns a client of this server alone, closed when the test
// ends, for tests that look at what the proxy stored.
func (s *Server) Client() *redis.Client {
	if s.client == nil {
		s.client = redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		s.t.Cleanup(func() { s.client.Close() })
	}
	return s.client
}

// Dump returns every key and every value in the server, one a line, for
// tests that search what is at rest for secrets.
func (s *Server) Dump() string {
	s.t.Helper()
	// A client of its own: Dump runs in cleanups, which may come after
	// Client's has closed.
	c, ctx := redis.NewClient(&redis.Options{Addr: s.Addr()}), context.Background()
	defer c.Close()
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		s.t.Fatalf("redis keys: %v", err)
	}
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "\n")
		if typ, _ := c.Type(ctx, k).Result(); typ == "hash" {
			for f, v := range c.HGetAll(ctx, k).Val() {
				b.WriteString(f + "=" + v + "\n")
			}
		} else {
			b.WriteString(c.Get(ctx, k).Val() + "\n")
		}
	}
	return b.String()
}

func (s *Server) ping() bool {
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	conn.Write([]byte("PING\r\n"))
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}
