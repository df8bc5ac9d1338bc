package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// fixedToken is what the bare proxy and nginx attach; authproxy fetches
// its own from the fake token endpoint.
const fixedToken = "fixed-token"

// proxies starts the proxies under test. Each gets a directory of its own
// under dir for its config, so that authproxy's config watcher sees no
// other file change.
type proxies struct {
	dir           string
	authproxy     string // binary: the real one, or bench/profiled in -profile mode
	before        string // another authproxy binary, run as "before"; "": none
	bare          string // binary of bench/bareproxy
	nginx         string // nginx binary; "" leaves nginx out
	profile       bool
	replayMaxBody string
	authproxyEnv  []string // added to authproxy's environment (-memory's GC settings)
	devNull       *os.File
	started       int
}

func (ps *proxies) subdir(name string) (string, error) {
	ps.started++
	d := filepath.Join(ps.dir, fmt.Sprintf("%s-%d", name, ps.started))
	// nginx's workers run as nobody when the bench runs as root, and
	// must reach their temporary directories.
	return d, os.MkdirAll(d, 0o755)
}

// startAuthproxy runs the built binary with everything on that the
// issue's targets assume: the access log at info in JSON (written to
// /dev/null), metrics (always on with the admin listener), the token
// cache, and both upstream timeouts.
func (ps *proxies) startAuthproxy(ctx context.Context, up *upstream) (*proxyProc, error) {
	return ps.runAuthproxy(ctx, up, "authproxy", ps.authproxy, ps.profile, nil)
}

// startBefore runs the -before binary as startAuthproxy runs this one.
func (ps *proxies) startBefore(ctx context.Context, up *upstream) (*proxyProc, error) {
	return ps.runAuthproxy(ctx, up, "before", ps.before, false, nil)
}

// runAuthproxy runs binary with the bench's config, under name. With
// forward set, its forward proxy is on too, with that CA, the upstream is
// reached by benchHost through it, and the returned proc's addr is the
// forward listener (readiness is asked of the reverse listener, which
// ends in the same upstream and token).
func (ps *proxies) runAuthproxy(ctx context.Context, up *upstream, name, binary string, profile bool, forward *forwardPKI) (*proxyProc, error) {
	dir, err := ps.subdir(name)
	if err != nil {
		return nil, err
	}
	addr, err1 := freeAddr()
	admin, err2 := freeAddr()
	pprofAddr, err3 := freeAddr()
	forwardAddr, err4 := freeAddr()
	if err := firstErr(err1, err2, err3, err4); err != nil {
		return nil, err
	}
	forwardProxy, hosts := "", ""
	if forward != nil {
		forwardProxy = fmt.Sprintf("forward_proxy: {listen: %s, ca_cert_file: %s, ca_key_file: %s}\n", forwardAddr, forward.caCert, forward.caKey)
		hosts = "\n    hosts: [" + benchHost + "]"
	}
	config := fmt.Sprintf(`listen: %s
admin: {listen: %s}
log: {level: info, format: json}
store: {type: memory}
limits: {max_request_body: 1MiB}
%supstreams:
  api:
    target: %s%s
    path_prefix: ""
    upstream_timeout: 60s
    upstream_idle_timeout: 5m
    token: {url: "%s/token", client_id: bench, client_secret: bench-secret, refresh_before: 10m%s}
    replay: {max_body: "%s"}
`, addr, admin, forwardProxy, up.url, hosts, up.url, dpopSetting(dir, up.dpop), ps.replayMaxBody)
	path := filepath.Join(dir, "proxy.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.Command(binary, "check", "--config", path).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s check: %w\n%s", name, err, out)
	}
	env := append(append([]string(nil), ps.authproxyEnv...), tracedEnv(name)...)
	if profile {
		env = append(env, "AUTHPROXY_BENCH_PPROF="+pprofAddr)
	}
	p, err := startProc(name, binary, []string{"--config", path}, env, ps.devNull)
	if err != nil {
		return nil, err
	}
	p.addr, p.metrics = addr, "http://"+admin+"/metrics"
	if profile {
		p.pprof = "http://" + pprofAddr + "/debug/pprof"
	}
	if err := ps.ready(ctx, p); err != nil {
		return nil, err
	}
	if forward != nil {
		p.addr = forwardAddr
	}
	return p, nil
}

// startBare runs bench/bareproxy, the baseline.
func (ps *proxies) startBare(ctx context.Context, up *upstream) (*proxyProc, error) {
	return ps.runBare(ctx, up, nil)
}

// runBare runs bench/bareproxy; with tls set it serves TLS with the leaf
// for benchHost, and the caller waits for it to serve (ready speaks
// plain HTTP).
func (ps *proxies) runBare(ctx context.Context, up *upstream, tls *forwardPKI) (*proxyProc, error) {
	addr, err1 := freeAddr()
	admin, err2 := freeAddr()
	if err := firstErr(err1, err2); err != nil {
		return nil, err
	}
	args := []string{"-listen", addr, "-admin", admin, "-target", up.url, "-token", fixedToken, "-upstream-timeout", "60s"}
	if tls != nil {
		args = append(args, "-cert", tls.leafCert, "-key", tls.leafKey)
	}
	p, err := startProc("bare", ps.bare, args, nil, ps.devNull)
	if err != nil {
		return nil, err
	}
	p.addr, p.metrics = addr, "http://"+admin+"/metrics"
	if tls == nil {
		if err := ps.ready(ctx, p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// nginxWorkers is nginx's worker_processes: one per core of a 2-core
// machine, as "auto" would choose there and as the Go proxies'
// GOMAXPROCS does.
const nginxWorkers = 2

// nginxConfig makes nginx do what authproxy does where it can: keep-alive
// to clients and the upstream, a static Authorization header, bodies up to
// 1 MiB kept in memory (as authproxy's replay buffer does), and an access
// log line per request to /dev/null, buffered as authproxy holds its
// access lines on a file (32 KiB, written within 100 ms).
const nginxConfig = `worker_processes %d;
worker_rlimit_nofile 16384;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 8192; }
http {
  access_log /dev/null combined buffer=32k flush=100ms;
  client_body_temp_path %[2]s/client_body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  client_max_body_size 1m;
  client_body_buffer_size 1m;
  upstream api {
    server %[3]s;
    # 128 idle connections a worker: 256 in all, authproxy's MaxIdleConnsPerHost.
    keepalive 128;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
  }
  server {
    listen %[4]s backlog=4096;
    location / {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer %[5]s";
      proxy_connect_timeout 60s;
      proxy_read_timeout 300s;
    }
  }
}
`

// startNginx runs nginx as a reverse proxy with a static token. Its CPU
// and RSS are its master's and workers'.
func (ps *proxies) startNginx(ctx context.Context, up *upstream) (*proxyProc, error) {
	dir, err := ps.subdir("nginx")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	upstreamHost := strings.TrimPrefix(up.url, "http://")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConfig, nginxWorkers, dir, upstreamHost, addr, fixedToken), 0o644); err != nil {
		return nil, err
	}
	errorLog, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		return nil, err
	}
	defer errorLog.Close()
	p, err := startProc("nginx", ps.nginx, []string{"-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf}, nil, errorLog)
	if err != nil {
		return nil, err
	}
	p.addr = addr
	if err := ps.ready(ctx, p); err != nil {
		msg, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		msg2, _ := os.ReadFile(filepath.Join(dir, "stderr.log"))
		return nil, fmt.Errorf("%w\n%s%s", err, msg, msg2)
	}
	for range 100 {
		if workers := children(p.cmd.Process.Pid); len(workers) >= nginxWorkers {
			p.pids = append(p.pids, workers...)
			return p, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("nginx: %d workers did not appear", nginxWorkers)
}

func (ps *proxies) ready(ctx context.Context, p *proxyProc) error {
	if err := p.waitReady(ctx, 20*time.Second); err != nil {
		p.stop()
		return err
	}
	return nil
}

// nginxVersion is what `nginx -v` says, e.g. "nginx/1.22.1".
func nginxVersion(path string) string {
	out, _ := exec.Command(path, "-v").CombinedOutput()
	s := strings.TrimSpace(string(out))
	return strings.TrimPrefix(s, "nginx version: ")
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
