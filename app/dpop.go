package app

import (
	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/config"

	"github.com/authproxy/authproxy/pki"
)

// dpopKeyFile and dpopSigningAlg copy token.dpop into auth's settings;
// "" without it.
func dpopKeyFile(t config.Token) string {
	if t.DPoP == nil {
		return ""
	}
	return t.DPoP.PrivateKeyFile
}

func dpopSigningAlg(t config.Token) auth.SigningAlg {
	if t.DPoP == nil {
		return ""
	}
	return auth.SigningAlg(t.DPoP.SigningAlg)
}

// dpopThumbprint is what /status shows of an upstream's DPoP key: its
// thumbprint, never the key.
func dpopThumbprint(c *auth.Cache) string {
	if k := c.DPoPKey(); k != nil {
		return k.Thumbprint()
	}
	return ""
}

// checkDPoP asks auth whether token.dpop's key parses and fits its
// signing_alg, as the proxy will when it builds the upstream's source.
func checkDPoP(u config.Upstream, problem func(string, error)) {
	d := u.Token.DPoP
	if d == nil || d.PrivateKeyFile == "" {
		return
	}
	key := "upstreams." + u.Name + ".token.dpop"
	signer, err := pki.ReadPrivateKey(d.PrivateKeyFile)
	if err != nil {
		problem(key+".private_key_file", err)
		return
	}
	if _, err := auth.NewDPoPKey(signer, auth.SigningAlg(d.SigningAlg), nil); err != nil {
		problem(key+".signing_alg", err)
	}
}

// dpopFleetWarnings says, for a fleet sharing tokens through Redis, that
// every replica must prove with the key the shared token is bound to: a
// replica with another key gets tokens of its own (the key's thumbprint
// is part of the token's identity), which defeats the sharing, and its
// requests fail if it took the others'. The key must be one file that all
// replicas mount, not one made per replica.
func dpopFleetWarnings(cfg *config.Config) (warnings []string) {
	if cfg.Store.Type != "redis" {
		return nil
	}
	for _, u := range cfg.Upstreams {
		if u.Token.DPoP != nil {
			warnings = append(warnings, "upstreams."+u.Name+".token.dpop.private_key_file: the replicas share their tokens through redis, "+
				"and a DPoP token works only with the key it is bound to: mount the same key file on every replica (a Secret or a shared volume), never a key made per replica")
		}
	}
	return warnings
}
