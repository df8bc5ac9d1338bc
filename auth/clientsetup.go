package auth

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
)

// client builds the Client that a source's every token request (and
// Login's code exchange) goes through: its HTTP client, over the token
// endpoint's TLS settings, and its client assertion. The private key is
// read and parsed here, once; the files the platform rotates are read for
// every request instead. The assertions signed with the key, if there is
// one, are returned too: the jwt-bearer grant signs its own with them.
func (s Settings) client(o Options) (Client, *SignedAssertion, error) {
	c := s.Client
	if c.Now == nil {
		c.Now = o.Now
	}
	if s.TLS.CAFile != "" || s.TLS.CertFile != "" || s.TLS.KeyFile != "" || s.TLS.ServerName != "" {
		f := s.TLS
		if f.OnRefused == nil && o.Log != nil {
			log := o.Log
			f.OnRefused = func(err error) {
				log.WithError(err).Warn("the token endpoint's client certificate files changed but cannot be used; the previous certificate is still presented")
			}
		}
		hc, err := tlsHTTPClient(f)
		if err != nil {
			return Client{}, nil, fmt.Errorf("upstream %q: token endpoint: %w", s.Name, &SettingError{Setting: SettingTLS, Err: err})
		}
		c.HTTPClient = hc
	}
	if c.HTTPClient == nil {
		c.HTTPClient = o.HTTPClient
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if s.DPoPKeyFile != "" && c.DPoP == nil {
		k, err := ReadDPoPKey(s.DPoPKeyFile, s.DPoPSigningAlg, c.Now)
		if err != nil {
			return Client{}, nil, fmt.Errorf("upstream %q: dpop: %w", s.Name, err)
		}
		c.DPoP = k
	}
	signed, err := s.signedAssertion(c)
	if err != nil {
		return Client{}, nil, fmt.Errorf("upstream %q: %w", s.Name, err)
	}
	switch c.AuthMethod {
	case "", ClientSecretPost, ClientSecretBasic, AuthNone:
	case TLSClientAuth:
		if s.TLS.CertFile == "" {
			return Client{}, nil, fmt.Errorf("upstream %q: tls_client_auth needs the client certificate: set TLS.CertFile and TLS.KeyFile", s.Name)
		}
	case ClientSecretJWT:
		if c.Assertion == nil {
			a, err := NewSignedAssertion(AssertionConfig{ClientID: c.ClientID, TokenURL: c.TokenURL, Audience: s.AssertionAudience,
				Secret: c.ClientSecret, Alg: s.SigningAlg, KeyID: s.KeyID, Now: c.Now})
			if err != nil {
				return Client{}, nil, fmt.Errorf("upstream %q: %w", s.Name, err)
			}
			c.Assertion = a
		}
	case PrivateKeyJWT:
		switch {
		case c.Assertion != nil:
		case s.ClientAssertionFile != "":
			c.Assertion = AssertionFile(s.ClientAssertionFile)
		case signed != nil:
			c.Assertion = signed
		default:
			return Client{}, nil, fmt.Errorf("upstream %q: private_key_jwt needs a private key file or a client assertion file", s.Name)
		}
	default:
		return Client{}, nil, fmt.Errorf("upstream %q: client authentication %q is not one of %s, %s, %s, %s, %s or %s", s.Name, c.AuthMethod,
			ClientSecretPost, ClientSecretBasic, ClientSecretJWT, PrivateKeyJWT, TLSClientAuth, AuthNone)
	}
	return c, signed, nil
}

// signedAssertion mints the assertions signed with PrivateKeyFile, for
// the client's authentication and the jwt-bearer grant alike; nil when
// there is no key file.
func (s Settings) signedAssertion(c Client) (*SignedAssertion, error) {
	if s.PrivateKeyFile == "" {
		return nil, nil
	}
	key, cert, err := ReadKeyFile(s.PrivateKeyFile)
	if err != nil {
		return nil, &SettingError{Setting: SettingPrivateKeyFile, Err: err}
	}
	return NewSignedAssertion(AssertionConfig{ClientID: c.ClientID, TokenURL: c.TokenURL, Audience: s.AssertionAudience,
		Key: key, Alg: s.SigningAlg, KeyID: s.KeyID, Certificate: cert, Now: c.Now})
}

// otherGrant builds the grants beside client credentials and refresh
// tokens; signed mints the assertions signed with PrivateKeyFile.
func (s Settings) otherGrant(c Client, signed *SignedAssertion) (Source, error) {
	switch s.Grant {
	case GrantJWTBearer:
		g := &JWTBearer{Client: c}
		switch {
		case s.AssertionFile != "":
			g.GrantAssertion = AssertionFile(s.AssertionFile)
		case signed != nil:
			g.GrantAssertion = signed
		default:
			return nil, fmt.Errorf("upstream %q: the jwt-bearer grant needs an assertion file or a private key file to sign one with", s.Name)
		}
		return g, nil
	case GrantTokenExchange:
		if s.SubjectTokenFile == "" {
			return nil, fmt.Errorf("upstream %q: token exchange needs a subject token file", s.Name)
		}
		return &TokenExchange{Client: c, SubjectTokenFile: s.SubjectTokenFile, SubjectTokenType: s.SubjectTokenType,
			ActorTokenFile: s.ActorTokenFile, ActorTokenType: s.ActorTokenType, RequestedTokenType: s.RequestedTokenType}, nil
	case GrantPassword:
		return &PasswordGrant{Client: c, Username: s.Username, Password: s.Password}, nil
	}
	return nil, fmt.Errorf("upstream %q: grant type %q is not one of %s, %s, %s, %s or %s", s.Name, s.Grant,
		GrantClientCredentials, GrantRefreshToken, GrantJWTBearer, GrantTokenExchange, GrantPassword)
}

// tlsHTTPClient is an HTTP client over files: the CA trusted and the
// client certificate presented, which is read again when it changes.
func tlsHTTPClient(f TLSFiles) (*http.Client, error) {
	cfg, cc, err := NewTLSConfig(f)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	if cc == nil {
		return &http.Client{Transport: tr}, nil
	}
	return &http.Client{Transport: cc.Transport(tr)}, nil
}

// ReadKeyFile reads a private key file as ReadPrivateKey does, and the
// certificate in it, if there is one: the certificate registered for the
// key (Entra ID), whose thumbprints the assertions name. A certificate
// that is not the key's is an error, as the provider would refuse every
// assertion.
func ReadKeyFile(path string) (crypto.Signer, *x509.Certificate, error) {
	b, err := readSmallFile(path)
	if err != nil {
		return nil, nil, keyError("read %s: %v", path, unwrapPath(err))
	}
	defer clear(b) // the key bytes are not needed once parsed
	key, err := ParsePrivateKey(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	for rest := b; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return key, nil, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, keyError("%s: the certificate beside the key does not parse: %v", path, err)
		}
		pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !pub.Equal(cert.PublicKey) {
			return nil, nil, keyError("%s: the certificate (subject %q) is not the key's; put the key's own certificate beside it, or none", path, cert.Subject.String())
		}
		return key, cert, nil
	}
}
