package app

import (
	"net/http"

	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/pki"
	"github.com/sirupsen/logrus"
)

// tlsFiles copies a TLS section of the config into auth's terms.
func tlsFiles(t config.TLS) pki.TLSFiles {
	return pki.TLSFiles{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName}
}

// withUpstreamTLS puts an upstream's TLS settings on its transport: the
// CA it trusts, the name its certificate must carry, and the client
// certificate it is shown, read again when cert-manager replaces it.
// With none set, base is returned as it is.
func withUpstreamTLS(base *http.Transport, t config.TLS, log logrus.FieldLogger) (http.RoundTripper, error) {
	if t == (config.TLS{}) {
		return base, nil
	}
	f := tlsFiles(t)
	f.OnRefused = func(err error) {
		log.WithError(err).Warn("the upstream's client certificate files changed but cannot be used; the previous certificate is still presented")
	}
	cfg, cert, err := pki.NewTLSConfig(f)
	if err != nil {
		return nil, err
	}
	base.TLSClientConfig = cfg
	if cert == nil {
		return base, nil
	}
	return cert.Transport(base), nil
}
