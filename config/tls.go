package config

// TLS is how a connection is made: a private CA to trust instead of the
// system's, and a client certificate to present. Nothing here, or
// anywhere, skips the server's verification.
type TLS struct {
	// CAFile is a PEM bundle of the CAs to trust; "" trusts the system's.
	CAFile string
	// CertFile and KeyFile are the client certificate and its key, both
	// or neither; they are read again when they change.
	CertFile, KeyFile string
	// ServerName is the name the server's certificate is checked against
	// instead of the URL's host (upstreams.NAME.tls only).
	ServerName string
}

// fileTLS is upstreams.NAME.token.tls: the token endpoint's.
type fileTLS struct {
	CAFile   string `mapstructure:"ca_file"`
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
}

// fileUpstreamTLS is upstreams.NAME.tls: the upstream's.
type fileUpstreamTLS struct {
	CAFile     string `mapstructure:"ca_file"`
	CertFile   string `mapstructure:"cert_file"`
	KeyFile    string `mapstructure:"key_file"`
	ServerName string `mapstructure:"server_name"`
}

// tls checks the TLS section at key. Its files must be readable; whether
// they hold what they should is pki's to say (authproxy check asks it).
func (p *Problems) tls(key string, f fileUpstreamTLS, dir string) TLS {
	t := TLS{
		CAFile:     p.readableFile(key+".ca_file", f.CAFile, dir),
		CertFile:   p.readableFile(key+".cert_file", f.CertFile, dir),
		KeyFile:    p.readableFile(key+".key_file", f.KeyFile, dir),
		ServerName: f.ServerName,
	}
	switch {
	case f.CertFile != "" && f.KeyFile == "":
		p.required(key+".key_file", nil, "required with cert_file: write the path of the certificate's private key (PEM)")
	case f.CertFile == "" && f.KeyFile != "":
		p.required(key+".cert_file", nil, "required with key_file: write the path of the client certificate (PEM) the key belongs to")
	}
	return t
}
