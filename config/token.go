package config

import (
	"strings"
	"time"
)

const (
	defaultRefreshBefore = 10 * time.Minute
	defaultTokenTimeout  = 10 * time.Second
	defaultMinLifetime   = 30 * time.Second
	defaultRedirectURI   = "http://127.0.0.1:8085/callback"
)

// reservedParam are the token request's fields that the proxy sets.
var reservedParam = map[string]bool{"grant_type": true, "client_id": true, "client_secret": true, "scope": true,
	"refresh_token": true, "code": true}

// Token says how to get the upstream's access token.
type Token struct {
	GrantType       string
	URL             string
	ClientID        string
	ClientSecret    Secret
	AuthMethod      string // client_secret_post | client_secret_basic
	BodyFormat      string // form | json
	Scopes          []string
	Params          map[string]string
	RefreshBefore   time.Duration
	DefaultLifetime time.Duration // zero: keep a token without expiry until a 401
	MinLifetime     time.Duration // a shorter lifetime is raised to it; a 401 still replaces the token
	Timeout         time.Duration
	// RefreshToken seeds the refresh_token grant; a stored one wins.
	RefreshToken Secret
	// AuthorizeURL and RedirectURI are for `authproxy login`.
	AuthorizeURL string
	RedirectURI  string
}

type fileToken struct {
	GrantType        string            `mapstructure:"grant_type"`
	URL              string            `mapstructure:"url"`
	ClientID         string            `mapstructure:"client_id"`
	ClientSecret     string            `mapstructure:"client_secret"`
	ClientSecretFile string            `mapstructure:"client_secret_file"`
	AuthMethod       string            `mapstructure:"auth_method"`
	BodyFormat       string            `mapstructure:"body_format"`
	Scopes           []string          `mapstructure:"scopes"`
	Params           map[string]string `mapstructure:"params"` // names keep their case: see keepParamCase
	RefreshBefore    *duration         `mapstructure:"refresh_before"`
	DefaultLifetime  *duration         `mapstructure:"default_lifetime"`
	MinLifetime      *duration         `mapstructure:"min_lifetime"`
	Timeout          *duration         `mapstructure:"timeout"`
	RefreshToken     string            `mapstructure:"refresh_token"`
	RefreshTokenFile string            `mapstructure:"refresh_token_file"`
	AuthorizeURL     string            `mapstructure:"authorize_url"`
	RedirectURI      string            `mapstructure:"redirect_uri"`
}

// token checks upstreams.NAME.token, whose key is tk.
func (p *Problems) token(tk string, ft fileToken, dir string) Token {
	t := Token{
		GrantType:       orDefault(ft.GrantType, "client_credentials"),
		ClientID:        ft.ClientID,
		AuthMethod:      orDefault(ft.AuthMethod, "client_secret_post"),
		BodyFormat:      orDefault(ft.BodyFormat, "form"),
		Scopes:          ft.Scopes,
		Params:          ft.Params,
		RefreshBefore:   ft.RefreshBefore.or(defaultRefreshBefore),
		DefaultLifetime: ft.DefaultLifetime.or(0),
		MinLifetime:     ft.MinLifetime.or(defaultMinLifetime),
		Timeout:         ft.Timeout.or(defaultTokenTimeout),
	}
	p.oneOf(tk+".grant_type", t.GrantType, "client_credentials", "refresh_token")
	if tu := p.url(tk+".url", ft.URL); tu != nil {
		t.URL = tu.String()
	}
	if ft.ClientID == "" {
		p.add(tk+".client_id", "required; write the client id the API gave you, or ${ENV_VAR}")
	}
	refreshGrant := t.GrantType == "refresh_token"
	// A refresh-token client may be public (no secret, PKCE at login).
	if !refreshGrant || ft.ClientSecret != "" || ft.ClientSecretFile != "" {
		t.ClientSecret = p.secretValue(tk, "client_secret", ft.ClientSecret, ft.ClientSecretFile, dir, true)
	}
	if refreshGrant {
		t.RefreshToken = p.secretValue(tk, "refresh_token", ft.RefreshToken, ft.RefreshTokenFile, dir, false)
		if ft.AuthorizeURL != "" {
			if au := p.url(tk+".authorize_url", ft.AuthorizeURL); au != nil {
				t.AuthorizeURL = au.String()
			}
		}
		t.RedirectURI = orDefault(ft.RedirectURI, defaultRedirectURI)
		if ru := p.url(tk+".redirect_uri", t.RedirectURI); ru != nil && !isLoopback(ru.Hostname()) {
			p.add(tk+".redirect_uri", "must be on this machine (localhost or 127.0.0.1), where authproxy login listens for it")
		}
	} else if ft.RefreshToken != "" || ft.RefreshTokenFile != "" || ft.AuthorizeURL != "" || ft.RedirectURI != "" {
		p.add(tk+".grant_type", "refresh_token, authorize_url and redirect_uri go with grant_type: refresh_token")
	}
	p.oneOf(tk+".auth_method", t.AuthMethod, "client_secret_post", "client_secret_basic")
	p.oneOf(tk+".body_format", t.BodyFormat, "form", "json")
	for k := range ft.Params {
		if reservedParam[strings.ToLower(k)] {
			p.add(tk+".params."+k, "is set by the proxy; remove it (scopes go in token.scopes)")
		}
	}
	if t.Timeout <= 0 {
		p.add(tk+".timeout", "must be more than 0; write e.g. 10s")
	}
	if t.MinLifetime < time.Second {
		p.add(tk+".min_lifetime", "must be at least 1s; write e.g. 30s")
	}
	return t
}
