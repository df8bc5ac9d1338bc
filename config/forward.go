package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
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

// forwardProxy checks the forward_proxy section against the upstreams,
// in this order: which hosts the upstreams claim (hostOwners), the bound
// on tunnels, what is passed through (passThrough), and, with listen set,
// the CA (forwardCA).
func (p *Problems) forwardProxy(f fileForwardProxy, ups []Upstream, fus map[string]fileUpstream, dir string) ForwardProxy {
	fp := ForwardProxy{Listen: f.Listen, MaxTunnels: f.MaxTunnels}
	owner := p.hostOwners(ups, fus)
	if fp.MaxTunnels == 0 {
		fp.MaxTunnels = defaultMaxTunnels
	}
	if fp.MaxTunnels < 0 {
		p.add("forward_proxy.max_tunnels", "must be more than 0; write e.g. %d", defaultMaxTunnels)
	}
	fp.PassThrough = p.passThrough(f.PassThrough, owner)
	if fp.Listen == "" {
		return fp
	}
	if _, _, err := net.SplitHostPort(fp.Listen); err != nil {
		p.add("forward_proxy.listen", "%q is not host:port; write e.g. 127.0.0.1:3128", fp.Listen)
	}
	fp.CACertFile, fp.CAKeyFile = p.forwardCA(f, owner, dir)
	return fp
}

// hostOwners settles each upstream's Hosts, and returns the upstream
// each host is routed to: a host listed under hosts: is that upstream's,
// two listing it is a problem; a target's host that several upstreams
// share (the same API by several prefixes) is reached by none, unless
// one lists it.
func (p *Problems) hostOwners(ups []Upstream, fus map[string]fileUpstream) map[string]string {
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
	return owner
}

// passThrough checks forward_proxy.pass_through, and returns its
// patterns as the proxy matches them, "name:port": never one that takes
// an upstream's host (owner's), nor every name of a top-level domain.
func (p *Problems) passThrough(listed []string, owner map[string]string) []string {
	var patterns []string
	for i, h := range listed {
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
		for _, host := range sortedKeys(owner) {
			if passes(pattern, host) {
				p.add(key, "%q would pass %s, upstream %q's host, through without its token; remove it, or narrow it", h, host, owner[host])
			}
		}
		patterns = append(patterns, pattern)
	}
	return patterns
}

// forwardCA checks the CA's files, required with listen, and returns
// their paths: the key the owner's alone, the name constraints
// permitting every host an upstream owns.
func (p *Problems) forwardCA(f fileForwardProxy, owner map[string]string, dir string) (certFile, keyFile string) {
	certFile, keyFile = absPath(f.CACertFile, dir), absPath(f.CAKeyFile, dir)
	if certFile == "" {
		p.required("forward_proxy.ca_cert_file", nil, "required with listen: the CA that signs the tunnels' certificates; make one with: authproxy ca create DIR --hosts HOST,...")
	}
	if keyFile == "" {
		p.required("forward_proxy.ca_key_file", nil, "required with listen: the CA's private key (mode 600); authproxy ca create writes it as ca-key.pem")
	}
	// Each file is looked at on its own, and pki.LoadCA, which reads both,
	// only when both can be read: it would say again, in its own words,
	// why one cannot, and for the key under ca_cert_file.
	certRead := certFile != "" && p.readable("forward_proxy.ca_cert_file", certFile)
	keyRead := keyFile != "" && p.readable("forward_proxy.ca_key_file", keyFile)
	if !certRead || !keyRead {
		return certFile, keyFile
	}
	ca, err := pki.LoadCA(certFile, keyFile)
	switch {
	case errors.Is(err, pki.ErrCAKeyFile):
		p.add("forward_proxy.ca_key_file", "%v", err)
		return certFile, keyFile
	case err != nil:
		p.add("forward_proxy.ca_cert_file", "%v", err)
		return certFile, keyFile
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
	return certFile, keyFile
}

// sortedKeys is m's keys in order: problems found by ranging over a map
// would otherwise come out in another order on every run.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
