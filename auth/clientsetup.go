package auth

import (
	"fmt"
	"net/http"

	"github.com/authproxy/authproxy/auth/grant"
	"github.com/authproxy/authproxy/outbound"
	"github.com/authproxy/authproxy/pki"
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
	// The token endpoint's own TLS files win over any client given; with
	// neither, the source has a client of its own.
	if !s.TLS.IsZero() || c.HTTPClient == nil && o.HTTPClient == nil {
		f := s.TLS
		if f.OnRefused == nil && o.Log != nil {
			log := o.Log
			f.OnRefused = func(err error) {
				log.WithError(err).Warn("the token endpoint's client certificate files changed but cannot be used; the previous certificate is still presented")
			}
		}
		rt, err := outbound.New(outbound.Settings{TLS: f})
		if err != nil {
			return Client{}, nil, fmt.Errorf("upstream %q: token endpoint: %w", s.Name, &SettingError{Setting: SettingTLS, Err: err})
		}
		c.HTTPClient = &http.Client{Transport: rt}
	}
	if c.HTTPClient == nil {
		c.HTTPClient = o.HTTPClient
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
	method, known := grant.Methods[string(c.AuthMethod)]
	if !known {
		return Client{}, nil, fmt.Errorf("upstream %q: client authentication %q is not one of %s, %s, %s, %s, %s or %s", s.Name, c.AuthMethod,
			ClientSecretPost, ClientSecretBasic, ClientSecretJWT, PrivateKeyJWT, TLSClientAuth, AuthNone)
	}
	if method.ClientCertificate && s.TLS.CertFile == "" {
		return Client{}, nil, fmt.Errorf("upstream %q: %s needs the client certificate: set TLS.CertFile and TLS.KeyFile", s.Name, c.AuthMethod)
	}
	if method.Secret == grant.SecretSigns && c.Assertion == nil {
		a, err := NewSignedAssertion(AssertionConfig{ClientID: c.ClientID, TokenURL: c.TokenURL, Audience: s.AssertionAudience,
			Secret: c.ClientSecret, Alg: s.SigningAlg, KeyID: s.KeyID, Now: c.Now})
		if err != nil {
			return Client{}, nil, fmt.Errorf("upstream %q: %w", s.Name, err)
		}
		c.Assertion = a
	}
	if method.Assertion {
		switch {
		case c.Assertion != nil:
		case s.ClientAssertionFile != "":
			c.Assertion = AssertionFile(s.ClientAssertionFile)
		case signed != nil:
			c.Assertion = signed
		default:
			return Client{}, nil, fmt.Errorf("upstream %q: %s needs a private key file or a client assertion file", s.Name, c.AuthMethod)
		}
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
	key, cert, err := pki.ReadKeyFile(s.PrivateKeyFile)
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
