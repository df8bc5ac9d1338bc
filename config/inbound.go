package config

import (
	"fmt"
	"net/netip"
)

// Inbound is the access control in front of every upstream.
type Inbound struct {
	// APIKeys, if any, are required of clients in APIKeyHeader.
	APIKeys      []Secret
	APIKeyHeader string
	// AllowCIDRs, if any, are the client addresses let in.
	AllowCIDRs []netip.Prefix
	// ForwardedHeaders is "drop" (client X-Forwarded-* and Forwarded are
	// removed) or "append" (the client address is appended).
	ForwardedHeaders string
}

type fileInbound struct {
	APIKeys          []string `mapstructure:"api_keys"`
	APIKeyHeader     string   `mapstructure:"api_key_header"`
	AllowCIDRs       []string `mapstructure:"allow_cidrs"`
	ForwardedHeaders string   `mapstructure:"forwarded_headers"`
}

func (p *Problems) inbound(fi fileInbound) Inbound {
	in := Inbound{APIKeyHeader: orDefault(fi.APIKeyHeader, "X-Authproxy-Key"), ForwardedHeaders: orDefault(fi.ForwardedHeaders, "drop")}
	for i, k := range fi.APIKeys {
		if len(k) < 16 {
			p.add(fmt.Sprintf("inbound.api_keys[%d]", i), "is shorter than 16 characters; use a long random key, e.g. from: openssl rand -hex 32")
		}
		in.APIKeys = append(in.APIKeys, Secret(k))
	}
	if !headerPattern.MatchString(in.APIKeyHeader) {
		p.add("inbound.api_key_header", "%q is not a header name; write e.g. X-Authproxy-Key", in.APIKeyHeader)
	}
	for i, c := range fi.AllowCIDRs {
		prefix, err := netip.ParsePrefix(c)
		if err != nil {
			if addr, aerr := netip.ParseAddr(c); aerr == nil {
				prefix, err = addr.Prefix(addr.BitLen())
			}
		}
		if err != nil {
			p.add(fmt.Sprintf("inbound.allow_cidrs[%d]", i), "%q is not an address or CIDR; write e.g. 10.0.0.0/8 or 127.0.0.1", c)
			continue
		}
		in.AllowCIDRs = append(in.AllowCIDRs, prefix.Masked())
	}
	p.oneOf("inbound.forwarded_headers", in.ForwardedHeaders, "drop", "append")
	return in
}
