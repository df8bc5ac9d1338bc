package config

import (
	"regexp"
	"strings"
)

// headerPattern is a header name (RFC 9110 5.1, a token).
var headerPattern = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// Inject says how the token is attached.
type Inject struct {
	Header  string
	Format  string
	Headers map[string]string
}

type fileInject struct {
	Header  string            `mapstructure:"header"`
	Format  string            `mapstructure:"format"`
	Headers map[string]string `mapstructure:"headers"`
}

// inject checks upstreams.NAME.inject, whose key is ik.
func (p *Problems) inject(ik string, fi fileInject) Inject {
	in := Inject{Header: orDefault(fi.Header, "Authorization"), Format: orDefault(fi.Format, "Bearer {token}"), Headers: fi.Headers}
	if !headerPattern.MatchString(in.Header) || strings.EqualFold(in.Header, "host") {
		p.add(ik+".header", "%q is not a header name you can set; write e.g. Authorization", in.Header)
	}
	if !strings.Contains(in.Format, "{token}") || strings.ContainsAny(in.Format, "\r\n") {
		p.add(ik+".format", "%q must contain {token} on one line; write e.g. \"Bearer {token}\", or \"{token}\" for the raw token", in.Format)
	}
	for h, v := range fi.Headers {
		if !headerPattern.MatchString(h) || strings.EqualFold(h, "host") || strings.EqualFold(h, in.Header) {
			p.add(ik+".headers."+h, "is not a header name you can set here")
		}
		if strings.ContainsAny(v, "\r\n") {
			p.add(ik+".headers."+h, "the value must be on one line")
		}
	}
	return in
}
