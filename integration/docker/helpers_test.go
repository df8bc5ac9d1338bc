package docker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/syncbuf"
)

// shell is where and how commands run: a directory and extra environment
// (the compose project's name, the credentials a line expects).
type shell struct {
	dir string
	env []string
}

func (s shell) command(ctx context.Context, line string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), s.env...)
	// A test that ends early must not leave a foreground `docker compose
	// up` behind: SIGINT is what Ctrl-C sends it.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	return cmd
}

// run runs line to the end and returns its output; a failure ends the test.
func (s shell) run(t *testing.T, line string) string {
	t.Helper()
	out, err := s.try(line)
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return out
}

// try runs line to the end (at most 5 minutes) and returns its combined
// output and error.
func (s shell) try(line string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	markRun(line)
	out, err := s.command(ctx, line).CombinedOutput()
	return string(out), err
}

// background is a command left running, such as `docker compose up`.
type background struct {
	line string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
	err  error
}

// start starts line and leaves it running until stop or the end of the
// test; its output is collected, and lines, if not nil, gets each stdout
// line as well.
func (s shell) start(t *testing.T, line string, lines chan<- string) *background {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{line: line, cmd: s.command(ctx, line), out: &syncbuf.Buffer{}, done: make(chan struct{})}
	b.cmd.Stderr = b.out
	if lines == nil {
		b.cmd.Stdout = b.out
	} else {
		pr, pw := io.Pipe()
		b.cmd.Stdout = pw
		go func() {
			sc := bufio.NewScanner(pr)
			for sc.Scan() {
				b.out.Write([]byte(sc.Text() + "\n"))
				select {
				case lines <- sc.Text():
				default:
				}
			}
			io.Copy(io.Discard, pr)
		}()
		defer func() {
			go func() { <-b.done; pw.Close() }()
		}()
	}
	markRun(line)
	if err := b.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("%s: %v", line, err)
	}
	go func() { b.err = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		cancel()
		<-b.done
	})
	return b
}

// wait waits for the command to end, at most d.
func (b *background) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-b.done:
		return b.err
	case <-time.After(d):
		t.Fatalf("%s: still running after %s\n%s", b.line, d, b.out.String())
		return nil
	}
}

// exited says whether the command has ended.
func (b *background) exited() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// docker runs the docker CLI with args (not a documented line) and
// returns its trimmed stdout.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// project is one compose project made from the repository's
// docker-compose.yml, under a name of its own.
type project struct {
	shell
	name string
}

// newProject names a project for this test and takes it down, volumes
// included, when the test ends.
func newProject(t *testing.T, what string) *project {
	t.Helper()
	name := fmt.Sprintf("%s%s%d", projectPrefix, what, os.Getpid())
	p := &project{shell: shell{dir: repoRoot, env: []string{"COMPOSE_PROJECT_NAME=" + name}}, name: name}
	t.Cleanup(func() {
		out, err := exec.Command("docker", "compose", "-p", name, "--profile", "replicas", "down", "-v", "--remove-orphans", "-t", "5").CombinedOutput()
		if err != nil {
			t.Logf("cleanup: docker compose -p %s down -v: %v\n%s", name, err, out)
		}
	})
	return p
}

// containers returns the ids of a service's containers, running or not.
func (p *project) containers(t *testing.T, service string) []string {
	t.Helper()
	return strings.Fields(docker(t, "ps", "-aq", "--filter", "label=com.docker.compose.project="+p.name,
		"--filter", "label=com.docker.compose.service="+service))
}

// container returns a service's only container.
func (p *project) container(t *testing.T, service string) string {
	t.Helper()
	ids := p.containers(t, service)
	if len(ids) != 1 {
		t.Fatalf("service %s of %s: %d containers, want 1", service, p.name, len(ids))
	}
	return ids[0]
}

// requireFreePorts fails the test at once if something on this machine
// already listens on a port the stack publishes.
func requireFreePorts(t *testing.T, ports ...int) {
	t.Helper()
	for _, port := range ports {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatalf("127.0.0.1:%d is taken (%v): the stacks publish it; stop what holds it", port, err)
		}
		ln.Close()
	}
}

// client is the tests' HTTP client: short timeouts, no keep-alive, so
// that a restarted container is reached afresh.
var client = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// get returns the status and body of a GET; 0 if it could not connect.
func get(url string) (int, string) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// eventually polls cond every 250ms until it holds or d passes, and
// returns how long it took.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for {
		ok, detail := cond()
		if ok {
			return time.Since(start)
		}
		last = detail
		if time.Since(start) > d {
			t.Fatalf("after %s, still not %s: %s", d, what, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// authenticated waits until url answers 200 with the fake API's
// "authenticated":true, which it only says when the proxy attached the
// token it accepts.
func authenticated(t *testing.T, d time.Duration, url string) time.Duration {
	t.Helper()
	return eventually(t, d, "authenticated at "+url, func() (bool, string) {
		status, body := get(url)
		return status == 200 && strings.Contains(body, `"authenticated":true`), fmt.Sprint(status, " ", body)
	})
}

// fakeStats is GET /_fake/stats of the fake APIs (see fakeapi.Stats).
type fakeStats map[string]struct {
	TokenRequests int `json:"token_requests"`
	APIRequests   int `json:"api_requests"`
	APIRejected   int `json:"api_rejected"`
	Logins        int `json:"logins"`
	Redemptions   int `json:"refresh_redemptions"`
	RedeemedTwice int `json:"refresh_tokens_redeemed_twice"`
	InvalidGrants int `json:"invalid_grants"`
}

// fakeRedbooth is the fake Redbooth's port as docker-compose.yml publishes it.
const fakeRedbooth = "http://127.0.0.1:9105"

func stats(t *testing.T) fakeStats {
	t.Helper()
	status, body := get(fakeRedbooth + "/_fake/stats")
	var s fakeStats
	if status != 200 || json.Unmarshal([]byte(body), &s) != nil {
		t.Fatalf("GET /_fake/stats: %d %s", status, body)
	}
	return s
}

// expireAccessTokens makes the fake Redbooth's access tokens expire now,
// so that the next request makes the proxy redeem its refresh token.
func expireAccessTokens(t *testing.T) {
	t.Helper()
	resp, err := client.Post(fakeRedbooth+"/_fake/expire", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /_fake/expire: %d", resp.StatusCode)
	}
}

// upstreamPaths are a path of each upstream in deploy/compose.yaml.
var upstreamPaths = []string{"/redgifs/v2/gifs/search", "/producthunt/v2/api/graphql", "/teenquotes/quotes", "/generic/my-api-endpoint", "/redbooth/api/3/me"}

// leftovers lists what of the project is still there: its containers,
// volumes and networks, by the label compose gives each.
func (p *project) leftovers(t *testing.T) []string {
	t.Helper()
	label := "label=com.docker.compose.project=" + p.name
	var left []string
	for _, args := range [][]string{
		{"ps", "-a", "--filter", label, "--format", "container {{.Names}}"},
		{"volume", "ls", "--filter", label, "--format", "volume {{.Name}}"},
		{"network", "ls", "--filter", label, "--format", "network {{.Name}}"},
	} {
		if out := docker(t, args...); out != "" {
			left = append(left, strings.Split(out, "\n")...)
		}
	}
	return left
}
