package config

import "strings"

// DPoP is upstreams.NAME.token.dpop: the key the upstream's tokens are
// bound to (RFC 9449). With it, every token request and every request
// sent upstream carries a proof of the key, and the tokens are of type
// DPoP, sent as `Authorization: DPoP <token>`.
type DPoP struct {
	// PrivateKeyFile is the key's PEM file, parsed by auth: EC P-256
	// (ES256, the default), P-384, Ed25519 or RSA of 2048 bits or more.
	PrivateKeyFile string
	// SigningAlg is the proofs' alg; "" takes the key's default.
	SigningAlg string
}

type fileDPoP struct {
	PrivateKeyFile string `mapstructure:"private_key_file"`
	SigningAlg     string `mapstructure:"signing_alg"`
}

// dpopAlgs are the algorithms a proof may be signed with: asymmetric
// ones only (RFC 9449 4.2: never none, never a MAC).
var dpopAlgs = []string{"ES256", "ES384", "EdDSA", "RS256", "PS256", "RS384", "RS512", "PS384", "PS512"}

// dpop checks upstreams.NAME.token.dpop; nil when it is not set (an
// empty mapping is none, as YAML's loader drops it anyway). Whether
// the key parses and fits signing_alg is auth's to say, as for
// private_key_file.
func (p *Problems) dpop(tk string, fd fileDPoP, dir string) *DPoP {
	if fd == (fileDPoP{}) {
		return nil
	}
	key := tk + ".dpop"
	d := &DPoP{PrivateKeyFile: p.readableFile(key+".private_key_file", fd.PrivateKeyFile, dir), SigningAlg: fd.SigningAlg}
	if fd.PrivateKeyFile == "" {
		p.required(key+".private_key_file", nil, "required: DPoP proves possession of a key; write private_key_file: /path/dpop.pem, e.g. one made with: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out dpop.pem")
	}
	if fd.SigningAlg != "" {
		if strings.HasPrefix(strings.ToUpper(fd.SigningAlg), "HS") {
			p.add(key+".signing_alg", "%q signs with a shared secret, and a DPoP proof is signed with the private key (RFC 9449 4.2); write ES256, or leave signing_alg out", fd.SigningAlg)
		} else {
			p.oneOf(key+".signing_alg", fd.SigningAlg, dpopAlgs...)
		}
	}
	return d
}

// dpopTokenType is token_type with token.dpop set: DPoP, whether written
// or not. A token bound to a key is never presented as another type.
func (p *Problems) dpopTokenType(tk, written string) string {
	if written != "" && !strings.EqualFold(written, "dpop") {
		p.add(tk+".token_type", "%q, but token.dpop binds the tokens to a key, and such tokens are DPoP (RFC 9449); remove token_type", written)
	}
	return "DPoP"
}

// dpopInject checks how a DPoP-bound token is attached: in Authorization
// with the DPoP scheme (RFC 9449 7.1), the default with token.dpop.
func (p *Problems) dpopInject(ik string, in *Inject, fi fileInject) {
	if fi.Format == "" {
		in.Format = "{token_type} {token}"
	} else if f := strings.TrimSpace(fi.Format); f != "{token_type} {token}" && f != "DPoP {token}" {
		p.add(ik+".format", "%q: a DPoP-bound token is sent as `Authorization: DPoP <token>` (RFC 9449 7.1); remove format", fi.Format)
	}
	if !strings.EqualFold(in.Header, "Authorization") {
		p.add(ik+".header", "%q: a DPoP-bound token goes in Authorization (RFC 9449 7.1); remove header", in.Header)
	}
	for h := range fi.Headers {
		if strings.EqualFold(h, "DPoP") {
			p.add(ik+".headers."+h, "the proxy sets DPoP for each request (token.dpop); remove it")
		}
	}
}
