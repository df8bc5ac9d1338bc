package app

import (
	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/pki"
)

// tlsFiles copies a TLS section of the config into pki's terms, for the
// token endpoint's and the upstream's transports (outbound.New).
func tlsFiles(t config.TLS) pki.TLSFiles {
	return pki.TLSFiles{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName}
}
