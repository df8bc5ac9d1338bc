package proxy

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
)

// Inbound limits who may use the proxy. Anyone who can reach it can use
// its tokens, so a proxy reachable beyond one host should set at least one
// of these. The zero value lets every client in.
type Inbound struct {
	// APIKeys, if any, are the keys a client must send in APIKeyHeader.
	APIKeys []string
	// APIKeyHeader carries the key; "" means X-Authproxy-Key. It is
	// removed before the request is forwarded.
	APIKeyHeader string
	// AllowCIDRs, if any, are the client addresses allowed in. The
	// connection's address is used, never a client-sent header.
	AllowCIDRs []netip.Prefix
}

var (
	errForbidden    = &requestError{failForbidden, "this client address may not use the proxy"}
	errUnauthorized = &requestError{failUnauthorized, "a valid proxy API key is required"}
)

// admit checks the client against in and strips the key header. A missing
// key and a wrong one get the same answer, and every configured key is
// compared in constant time, so neither timing nor wording tells a caller
// how close it came.
func (in *Inbound) admit(r *http.Request) error {
	if len(in.AllowCIDRs) > 0 && !in.allowed(r.RemoteAddr) {
		return errForbidden
	}
	if len(in.APIKeys) == 0 {
		return nil
	}
	header := in.keyHeader()
	got := []byte(r.Header.Get(header))
	r.Header.Del(header)
	match := 0
	for _, k := range in.APIKeys {
		match |= subtle.ConstantTimeCompare(got, []byte(k))
	}
	if match != 1 || len(got) == 0 {
		return errUnauthorized
	}
	return nil
}

// allowed says whether the client at remoteAddr is in AllowCIDRs. The
// connection's address is used, never a client-sent header.
func (in *Inbound) allowed(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	addr, perr := netip.ParseAddr(host)
	if err != nil || perr != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range in.AllowCIDRs {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func (in *Inbound) keyHeader() string {
	if in.APIKeyHeader == "" {
		return "X-Authproxy-Key"
	}
	return in.APIKeyHeader
}
