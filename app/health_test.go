package app

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// health finds the admin address as serve would: admin.listen from the
// config with AUTHPROXY_ADMIN_LISTEN over it, "off" meaning off whichever
// of the two says it.
func TestHealthAsksWhereServeListens(t *testing.T) {
	var probes atomic.Int32
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	}))
	defer admin.Close()
	adminAddr := strings.TrimPrefix(admin.URL, "http://")
	_, adminPort, _ := strings.Cut(adminAddr, ":")
	const upstream = `
store: {type: memory}
upstreams:
  a:
    target: http://127.0.0.1:1
    token: {url: http://127.0.0.1:1/token, client_id: c, client_secret: s}
`
	listening := writeConfig(t, "admin: {listen: \""+adminAddr+"\"}"+upstream)
	elsewhere := writeConfig(t, "admin: {listen: \"127.0.0.1:1\"}"+upstream)
	off := writeConfig(t, "admin: {listen: \"off\"}"+upstream)
	const isOff = "authproxy health: admin.listen is off (in the config or AUTHPROXY_ADMIN_LISTEN); give --url\n"
	healthy := "healthy: " + admin.URL + "/healthz\n"
	for _, tt := range []struct {
		env  string // AUTHPROXY_ADMIN_LISTEN; "" leaves it unset
		args []string
		exit int
		says string // all of stdout, or of stderr if exit is not 0
	}{
		{"", []string{"--config", listening}, 0, healthy},
		{"", []string{"--config", off}, 2, isOff},
		{"off", []string{"--config", listening}, 2, isOff},
		{"off", nil, 2, isOff},
		{adminAddr, []string{"--config", elsewhere}, 0, healthy},
		{adminAddr, []string{"--config", off}, 0, healthy},
		{adminAddr, nil, 0, healthy},
		{":" + adminPort, []string{"--config", elsewhere}, 0, healthy}, // every interface: asked on loopback
		{"", []string{"--config", elsewhere, "--url", admin.URL + "/healthz"}, 0, healthy},
		{"off", []string{"--config", listening, "--url", admin.URL + "/healthz"}, 0, healthy},
	} {
		t.Run(tt.env+" "+strings.Join(tt.args, " "), func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("AUTHPROXY_ADMIN_LISTEN", tt.env)
			}
			before := probes.Load()
			code, out, errOut := runCLI(t, append([]string{"health"}, tt.args...)...)
			got := out
			if tt.exit != 0 {
				got = errOut
			}
			if code != tt.exit || got != tt.says {
				t.Errorf("exit %d, want %d and %q\nstdout: %s\nstderr: %s", code, tt.exit, tt.says, out, errOut)
			}
			wantProbes := int32(0) // a refusal asks nobody
			if tt.exit == 0 {
				wantProbes = 1
			}
			if probed := probes.Load() - before; probed != wantProbes {
				t.Errorf("the admin listener was asked %d times, want %d", probed, wantProbes)
			}
		})
	}
}

// An AUTHPROXY_ADMIN_LISTEN that is not an address is told as config
// tells it in the file, naming admin.listen, not probed somewhere else.
func TestHealthRefusesAnAdminListenThatIsNotAnAddress(t *testing.T) {
	path := writeConfig(t, `
store: {type: memory}
upstreams:
  a:
    target: http://127.0.0.1:1
    token: {url: http://127.0.0.1:1/token, client_id: c, client_secret: s}
`)
	t.Setenv("AUTHPROXY_ADMIN_LISTEN", "9999")
	for _, args := range [][]string{{"health", "--config", path}, {"health"}} {
		code, out, errOut := runCLI(t, args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "admin.listen (from AUTHPROXY_ADMIN_LISTEN): \"9999\" is not host:port; write e.g. 127.0.0.1:9090, or off") {
			t.Errorf("%q: exit %d, want 2 naming admin.listen\nstdout: %s\nstderr: %s", args, code, out, errOut)
		}
	}
}

// With AUTHPROXY_ADMIN_LISTEN set, as the Docker image sets it, health
// asks the running proxy and does not load the config file: a bad edit of
// the file, which a reload refuses while the proxy goes on with its last
// good config, or a ${VAR} the healthcheck's environment lacks, must not
// make a healthy proxy look unhealthy.
func TestHealthWithTheAddressInTheEnvironmentLoadsNoConfig(t *testing.T) {
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer admin.Close()
	broken := writeConfig(t, "upstreams: {a: {targt: http://127.0.0.1:1}}\nlisten: x\n")
	t.Setenv("AUTHPROXY_ADMIN_LISTEN", strings.TrimPrefix(admin.URL, "http://"))
	if code, out, errOut := runCLI(t, "health", "--config", broken); code != 0 || out != "healthy: "+admin.URL+"/healthz\n" {
		t.Errorf("exit %d, want 0\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

// serve expands ${VAR} in AUTHPROXY_ADMIN_LISTEN, as in every value;
// health asks where serve listens.
func TestHealthExpandsVariablesInTheAddress(t *testing.T) {
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer admin.Close()
	host, port, _ := strings.Cut(strings.TrimPrefix(admin.URL, "http://"), ":")
	t.Setenv("ADMIN_PORT", port)
	t.Setenv("AUTHPROXY_ADMIN_LISTEN", host+":${ADMIN_PORT}")
	if code, out, errOut := runCLI(t, "health"); code != 0 {
		t.Errorf("exit %d, want 0\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

// With admin.listen in the file, a bad edit elsewhere in it (which a
// reload refuses while the proxy goes on) does not make the running proxy
// look unhealthy: health reads admin.listen alone.
func TestHealthReadsOnlyAdminListenFromTheFile(t *testing.T) {
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer admin.Close()
	broken := writeConfig(t, "admin: {listen: \""+strings.TrimPrefix(admin.URL, "http://")+"\"}\nupstreams: {a: {targt: http://127.0.0.1:1}}\nlisten: x\n")
	if code, out, errOut := runCLI(t, "health", "--config", broken); code != 0 || out != "healthy: "+admin.URL+"/healthz\n" {
		t.Errorf("exit %d, want 0\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}
