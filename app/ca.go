package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/authproxy/authproxy/pki"
)

// caCommand is `authproxy ca create DIR --hosts a,b`: the forward
// proxy's CA, constrained to the hosts it serves.
var caCommand = command{
	name: "ca", args: "create DIR --hosts HOST[,HOST...] [--if-missing]", operand: verbAndDir,
	summary: "make the forward proxy's CA, valid for the named hosts only",
	about: `Make a certificate authority for forward_proxy in DIR: ca.pem (give it to
the apps, which trust it) and ca-key.pem (mode 600, for authproxy alone).
Its X.509 name constraints (critical) permit only the hosts given and the
names below them, and no IP address: if the key leaked, it could
impersonate no other site. Print how to make common clients trust it.
With --if-missing, a CA already in DIR that permits the hosts is kept (for
a container that runs this at every start).`,
	example: "authproxy ca create /etc/authproxy/ca --hosts api.redgifs.com,api.producthunt.com",
	flags: func(fs *flag.FlagSet, opts Options) func(context.Context, string) error {
		hosts := fs.String("hosts", "", "the `HOSTS` the CA may issue for, comma-separated (each covers the names below it)")
		ifMissing := fs.Bool("if-missing", false, "keep a CA already in DIR if it permits the hosts, instead of failing")
		return func(_ context.Context, operand string) error {
			verb, dir, _ := strings.Cut(operand, " ")
			if verb != "create" {
				return refusef("authproxy ca: unknown action %q; write authproxy ca create DIR --hosts HOST,...", verb)
			}
			return caCreate(dir, *hosts, *ifMissing, opts)
		}
	},
}

// caCreate is `authproxy ca create DIR`: hosts that are not host names
// are refused (exit 2); a CA that cannot be kept or written is exit 1.
func caCreate(dir, hostList string, ifMissing bool, opts Options) error {
	var hosts []string
	for h := range strings.SplitSeq(hostList, ",") {
		if h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), ".")); h != "" {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return refusef("authproxy ca create: name the hosts with --hosts, e.g. --hosts api.redgifs.com (those of your upstreams' targets and hosts:)")
	}
	for _, h := range hosts {
		if strings.ContainsAny(h, "/:*@ ") || strings.Trim(h, "0123456789.") == "" {
			return refusef("authproxy ca create: %q is not a host name; write e.g. api.example.com", h)
		}
	}
	if ifMissing {
		if kept, err := keepCA(dir, hosts); err != nil {
			return fmt.Errorf("authproxy ca create: %w", err)
		} else if kept {
			fmt.Fprintf(opts.Stdout, "%s already holds a CA that permits %s: kept as it is\n", dir, strings.Join(hosts, ", "))
			return nil
		}
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	certPath, keyPath, err := pki.WriteCA(dir, hosts, now())
	if err != nil {
		return fmt.Errorf("authproxy ca create: %w", err)
	}
	writeTrustHelp(opts.Stdout, certPath, keyPath, hosts)
	return nil
}

// keepCA says whether dir already holds a CA whose key is its owner's
// alone and that permits every host; an error if it holds one that is
// not fit. Neither file there: false, and a new CA is made (one without
// the other is WriteCA's error).
func keepCA(dir string, hosts []string) (bool, error) {
	certPath, keyPath := filepath.Join(dir, pki.CertFileName), filepath.Join(dir, pki.KeyFileName)
	_, certErr := os.Lstat(certPath)
	_, keyErr := os.Lstat(keyPath)
	if certErr != nil || keyErr != nil {
		return false, nil
	}
	ca, err := pki.LoadCA(certPath, keyPath)
	if err != nil {
		return false, err
	}
	for _, h := range hosts {
		if err := ca.Permits(h); err != nil {
			return false, fmt.Errorf("the CA in %s does not permit %s (%v); remove it to make a new one, or leave that host out", dir, h, err)
		}
	}
	return true, nil
}

// writeTrustHelp tells the operator what to do with the new CA.
func writeTrustHelp(w io.Writer, certPath, keyPath string, hosts []string) {
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	certPath, keyPath = abs(certPath), abs(keyPath)
	fmt.Fprintf(w, `Wrote %s (the CA certificate: give it to the apps)
  and %s (its key, mode 600: authproxy's alone, never into an app's image).
It may issue certificates for %s and the names below them, nothing else.

In proxy.yaml:
  forward_proxy:
    listen: 127.0.0.1:3128
    ca_cert_file: %s
    ca_key_file: %s

Make the app trust it and use the proxy (the app itself is unchanged):
  every client: HTTPS_PROXY=http://127.0.0.1:3128  (and HTTP_PROXY for http://)
  curl:    CURL_CA_BUNDLE=%[1]s   or  curl --cacert %[1]s
  Go:      SSL_CERT_FILE=%[1]s   (replaces the system roots: concatenate them if the app calls other hosts)
  Python:  REQUESTS_CA_BUNDLE=%[1]s (requests), SSL_CERT_FILE=%[1]s (urllib, httpx)
  Node:    NODE_EXTRA_CA_CERTS=%[1]s  (Node 22.21+ and 24.5+ honour HTTPS_PROXY with NODE_USE_ENV_PROXY=1)
  Java:    keytool -importcert -noprompt -alias authproxy -file %[1]s -keystore app-truststore.jks -storepass changeit
           then -Djavax.net.ssl.trustStore=app-truststore.jks -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=3128
  system:  cp %[1]s /usr/local/share/ca-certificates/authproxy.crt && update-ca-certificates  (Debian, Ubuntu)

In a container, mount the certificate alone, read-only:
  docker run -v %[1]s:/etc/authproxy/ca.pem:ro -e HTTPS_PROXY=http://authproxy:3128 \
    -e SSL_CERT_FILE=/etc/authproxy/ca.pem -e NODE_EXTRA_CA_CERTS=/etc/authproxy/ca.pem app-image
  (compose: volumes: ["./ca/ca.pem:/etc/authproxy/ca.pem:ro"])
`, certPath, keyPath, strings.Join(hosts, ", "), certPath, keyPath)
}
