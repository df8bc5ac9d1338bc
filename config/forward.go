package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/authproxy/authproxy/pki"
)

// The keys here are the forward proxy's: forward_proxy and each
// upstream's hosts.

// defaultMaxTunnels bounds the CONNECT tunnels open at once.
const defaultMaxTunnels = 1024

// ForwardProxy is the listener that apps reach through HTTP_PROXY and
// HTTPS_PROXY. Listen "" turns it off, the default.
type ForwardProxy struct {
	Listen string
	// CACertFile and CAKeyFile are the CA that signs the certificates a
	// tunnel to an upstream's host is served with.
	CACertFile, CAKeyFile string
	// PassThrough are the hosts tunnelled blindly, without a token:
	// "name:port", or "*.suffix:port" for every name below suffix.
	PassThrough []string
	// MaxTunnels bounds the CONNECT tunnels open at once.
	MaxTunnels int
}

type fileForwardProxy struct {
	Listen      string   `mapstructure:"listen"`
	CACertFile  string   `mapstructure:"ca_cert_file"`
	CAKeyFile   string   `mapstructure:"ca_key_file"`
	PassThrough []string `mapstructure:"pass_through"`
	MaxTunnels  int      `mapstructure:"max_tunnels"`
}

// dnsName is a host name as the forward proxy matches it: lower case,
// letters, digits and hyphens in dot-separated labels.
var dnsName = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// forwardHost reads one host, "name" or "name:port", as written in
// hosts or pass_through, into the name and port ("" if none), or says
// what to write instead.
func forwardHost(s string) (name, port string, err error) {
	name = strings.ToLower(strings.TrimSpace(s))
	if strings.Contains(s, "/") {
		return "", "", fmt.Errorf("%q is a URL; write the host alone, e.g. api.example.com", s)
	}
	if h, p, err := net.SplitHostPort(name); err == nil {
		name, port = h, p
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", "", fmt.Errorf("%q has no valid port; write e.g. api.example.com or api.example.com:443", s)
		}
	}
	name = strings.TrimSuffix(name, ".")
	switch {
	case net.ParseIP(strings.Trim(name, "[]")) != nil:
		return "", "", fmt.Errorf("%q is an IP address; the forward proxy serves host names only (an app calls an API by its name)", s)
	case !dnsName.MatchString(strings.TrimPrefix(name, "*.")):
		return "", "", fmt.Errorf("%q is not a host name; write e.g. api.example.com", s)
	}
	return name, port, nil
}

// upstreamHosts is where the forward proxy routes to an upstream: its
// target's host and port, when the target names a host, and each listed
// host, on the port given or, without one, on 443 and 80.
func (p *Problems) upstreamHosts(key string, u *url.URL, listed []string) []string {
	var hosts []string
	if u != nil && net.ParseIP(u.Hostname()) == nil {
		port := u.Port()
		if port == "" {
			port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
		}
		hosts = append(hosts, net.JoinHostPort(strings.TrimSuffix(strings.ToLower(u.Hostname()), "."), port))
	}
	for i, h := range listed {
		name, port, err := forwardHost(h)
		if err == nil && strings.HasPrefix(name, "*.") {
			err = fmt.Errorf("%q is a wildcard; an upstream's hosts are exact names (a wildcard belongs in forward_proxy.pass_through)", h)
		}
		if err != nil {
			p.add(fmt.Sprintf("%s.hosts[%d]", key, i), "%v", err)
			continue
		}
		if port != "" {
			hosts = append(hosts, net.JoinHostPort(name, port))
		} else {
			hosts = append(hosts, net.JoinHostPort(name, "443"), net.JoinHostPort(name, "80"))
		}
	}
	return dedupe(hosts)
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// forwardProxy checks the forward_proxy section against the upstreams:
// which hosts they claim (each host one upstream's), what is passed
// through (never an upstream's host), and the CA (its key the owner's
// alone, its name constraints permitting every upstream host). It
// settles each upstream's Hosts: a host listed under hosts: is that
// upstream's, two listing it is a problem; a target's host that several
// upstreams share (the same API by several prefixes) is reached by none,
// unless one lists it.
func (p *Problems) forwardProxy(f fileForwardProxy, ups []Upstream, fus map[string]fileUpstream, dir string) ForwardProxy {
	fp := ForwardProxy{Listen: f.Listen, MaxTunnels: f.MaxTunnels}
	owner := map[string]string{}     // host -> the upstream that lists it
	targets := map[string][]string{} // a target's host -> the upstreams it is the target of
	for i, u := range ups {
		listed := map[string]bool{}
		for _, h := range fus[u.Name].Hosts {
			name, port, err := forwardHost(h)
			if err != nil {
				continue // upstreamHosts said so
			}
			for _, pt := range []string{port, "443", "80"} {
				if pt != "" && (port == "" || pt == port) {
					listed[net.JoinHostPort(name, pt)] = true
				}
			}
		}
		for _, h := range u.Hosts {
			if !listed[h] {
				targets[h] = append(targets[h], u.Name)
				continue
			}
			if other, dup := owner[h]; dup {
				p.add("upstreams."+u.Name+".hosts", "%s is also listed by upstream %q; a host chooses one upstream: list it under one of them", h, other)
			}
			owner[h] = u.Name
		}
		ups[i].Hosts = nil
	}
	for h, names := range targets {
		if _, listed := owner[h]; !listed && len(names) == 1 {
			owner[h] = names[0]
		}
	}
	for i := range ups {
		for h, name := range owner {
			if name == ups[i].Name {
				ups[i].Hosts = append(ups[i].Hosts, h)
			}
		}
		sort.Strings(ups[i].Hosts)
	}
	if fp.MaxTunnels == 0 {
		fp.MaxTunnels = defaultMaxTunnels
	}
	if fp.MaxTunnels < 0 {
		p.add("forward_proxy.max_tunnels", "must be more than 0; write e.g. %d", defaultMaxTunnels)
	}
	for i, h := range f.PassThrough {
		key := fmt.Sprintf("forward_proxy.pass_through[%d]", i)
		name, port, err := forwardHost(h)
		if err != nil {
			p.add(key, "%v", err)
			continue
		}
		if suffix, ok := strings.CutPrefix(name, "*."); ok && !strings.Contains(suffix, ".") {
			// A pattern for a top-level domain is an open proxy to a
			// good part of the internet.
			p.add(key, "%q passes every name under .%s through; name the domain, e.g. *.blobs.example.%s", h, suffix, suffix)
			continue
		}
		if port == "" {
			port = "443"
		}
		pattern := net.JoinHostPort(name, port)
		for host, u := range owner {
			if passes(pattern, host) {
				p.add(key, "%q would pass %s, upstream %q's host, through without its token; remove it, or narrow it", h, host, u)
			}
		}
		fp.PassThrough = append(fp.PassThrough, pattern)
	}
	if fp.Listen == "" {
		return fp
	}
	if _, _, err := net.SplitHostPort(fp.Listen); err != nil {
		p.add("forward_proxy.listen", "%q is not host:port; write e.g. 127.0.0.1:3128", fp.Listen)
	}
	fp.CACertFile = p.readableFile("forward_proxy.ca_cert_file", f.CACertFile, dir)
	fp.CAKeyFile = absPath(f.CAKeyFile, dir)
	if fp.CACertFile == "" {
		p.required("forward_proxy.ca_cert_file", nil, "required with listen: the CA that signs the tunnels' certificates; make one with: authproxy ca create DIR --hosts HOST,...")
	}
	if fp.CAKeyFile == "" {
		p.required("forward_proxy.ca_key_file", nil, "required with listen: the CA's private key (mode 600); authproxy ca create writes it as ca-key.pem")
	}
	if fp.CACertFile == "" || fp.CAKeyFile == "" || p.notAFile("forward_proxy.ca_key_file", fp.CAKeyFile, false) {
		return fp
	}
	ca, err := pki.LoadCA(fp.CACertFile, fp.CAKeyFile)
	switch {
	case errors.Is(err, pki.ErrKeyReadable):
		p.add("forward_proxy.ca_key_file", "%v", err)
		return fp
	case err != nil:
		p.add("forward_proxy.ca_cert_file", "%v", err)
		return fp
	}
	names := map[string]bool{}
	for h := range owner {
		name, _, _ := net.SplitHostPort(h)
		names[name] = true
	}
	for _, name := range sortedKeys(names) {
		if err := ca.Permits(name); err != nil {
			p.add("forward_proxy.ca_cert_file", "%v", err)
		}
	}
	return fp
}

// passes reports whether a pass_through pattern ("name:port" or
// "*.suffix:port") takes host ("name:port"). The proxy matches the same
// way.
func passes(pattern, host string) bool {
	pname, pport, _ := net.SplitHostPort(pattern)
	name, port, _ := net.SplitHostPort(host)
	if pport != port {
		return false
	}
	if suffix, ok := strings.CutPrefix(pname, "*"); ok {
		return strings.HasSuffix(name, suffix)
	}
	return name == pname
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
