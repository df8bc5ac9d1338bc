package app

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/authproxy/authproxy/config"
)

// healthCommand is `authproxy health`: the Docker HEALTHCHECK.
var healthCommand = command{
	name: "health", args: "[--config FILE | --url URL]",
	summary: "exit 0 if a running proxy's /healthz answers 200 (a HEALTHCHECK without a shell)",
	about: `Ask a running proxy whether it is up: exit 0 if its /healthz answers
200, 1 if not. The address is --url, else admin.listen as serve reads it:
AUTHPROXY_ADMIN_LISTEN over the config's, whose default is 127.0.0.1:9090
(with no --config, the demo's). Only admin.listen is read from the file,
so a bad edit elsewhere, which a reload refuses while the proxy goes on,
does not fail the check. Exit 2 if admin.listen is off or no address.`,
	example: "authproxy health --url http://127.0.0.1:9090/healthz",
	flags: func(fs *flag.FlagSet, opts Options) func(context.Context, string) error {
		path := configFlag(fs, opts, "; its admin.listen gives the address")
		var url httpURLFlag
		fs.Var(&url, "url", "the `URL` of /healthz (default: from admin.listen, else http://127.0.0.1:9090/healthz)")
		return func(ctx context.Context, _ string) error { return health(ctx, *path, string(url), opts) }
	},
}

// health asks a running proxy's admin endpoint whether it is up: the
// Docker HEALTHCHECK, which needs no shell or curl in the image.
func health(ctx context.Context, path, url string, opts Options) error {
	if url == "" {
		addr, err := adminAddress(path, opts)
		if err != nil {
			return refuse(err)
		}
		if addr == "" {
			return refusef("authproxy health: admin.listen is off (in the config or AUTHPROXY_ADMIN_LISTEN); give --url")
		}
		host, port, _ := net.SplitHostPort(addr) // validated by config
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		url = "http://" + net.JoinHostPort(host, port) + "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return refusef("authproxy health: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("authproxy health: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("authproxy health: %s answered %s", url, resp.Status)
	}
	fmt.Fprintf(opts.Stdout, "healthy: %s\n", url)
	return nil
}

// adminAddress is where the proxy that serve would run with this --config
// and environment has its admin endpoints, "" if they are off: the
// config's admin.listen, read alone (config.AdminListenOf). With no
// --config serve runs the built-in demo, so it is the demo's.
func adminAddress(path string, opts Options) (string, error) {
	name, data := "built-in demo", demoConfig
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return "", fmt.Errorf("read config: %w", err)
		}
		name = path
	}
	return config.AdminListenOf(name, data, opts.config())
}
