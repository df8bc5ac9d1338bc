package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Hosts as the forward proxy matches them: written in an upstream's
// hosts and in forward_proxy.pass_through, read here the way the proxy
// reads a request's host.

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
