package config

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Defaults, as documented in README.md.
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultAdminListen     = "127.0.0.1:9090"
	defaultShutdownTimeout = 30 * time.Second
	defaultUpstreamTimeout = 60 * time.Second
	defaultRefreshBefore   = 10 * time.Minute
	defaultTokenTimeout    = 10 * time.Second
	defaultMinLifetime     = 30 * time.Second
	defaultMaxBody         = 1 << 20
	defaultUpstreamIdle    = 5 * time.Minute
	defaultMaxHeaderBytes  = 64 << 10
	defaultReadHeader      = 10 * time.Second
	defaultMaxRequestBody  = 10 << 20
	defaultIdleTimeout     = 2 * time.Minute
	defaultLockTTL         = 15 * time.Second
)

var (
	namePattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	prefixPattern = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)*/?$`)
	headerPattern = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	reservedParam = map[string]bool{"grant_type": true, "client_id": true, "client_secret": true, "scope": true,
		"refresh_token": true, "code": true}
)

func (p *Problems) validate(fc *fileConfig, dir string) *Config {
	cfg := &Config{
		Listen:          orDefault(fc.Listen, DefaultListen),
		Log:             Log{Level: orDefault(fc.Log.Level, "info"), Format: orDefault(fc.Log.Format, "json")},
		ShutdownTimeout: p.duration("shutdown_timeout", fc.ShutdownTimeout, defaultShutdownTimeout),
	}
	cfg.AdminListen = orDefault(fc.Admin.Listen, DefaultAdminListen)
	if cfg.AdminListen == "off" {
		cfg.AdminListen = ""
	} else if _, _, err := net.SplitHostPort(cfg.AdminListen); err != nil {
		p.add("admin.listen", "%q is not host:port; write e.g. 127.0.0.1:9090, or off", cfg.AdminListen)
	}
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		p.add("listen", "%q is not host:port; write e.g. 127.0.0.1:8080, or :8080 for every interface", cfg.Listen)
	}
	cfg.Inbound = p.inbound(fc.Inbound)
	cfg.Store = p.store(fc.Store, dir)
	cfg.Limits = Limits{
		MaxHeaderBytes:    p.size("limits.max_header_bytes", fc.Limits.MaxHeaderBytes, defaultMaxHeaderBytes),
		ReadHeaderTimeout: p.duration("limits.read_header_timeout", fc.Limits.ReadHeaderTimeout, defaultReadHeader),
		MaxRequestBody:    p.size("limits.max_request_body", fc.Limits.MaxRequestBody, defaultMaxRequestBody),
		IdleTimeout:       p.duration("limits.idle_timeout", fc.Limits.IdleTimeout, defaultIdleTimeout),
		ReplayMemory:      p.size("limits.replay_memory", fc.Limits.ReplayMemory, 64<<20),
		BodyReadTimeout:   p.duration("limits.body_read_timeout", fc.Limits.BodyReadTimeout, 30*time.Second),
	}
	if cfg.Limits.MaxHeaderBytes < 1<<10 {
		p.add("limits.max_header_bytes", "must be at least 1KiB; write e.g. 64KiB")
	}
	if cfg.Limits.ReadHeaderTimeout <= 0 {
		p.add("limits.read_header_timeout", "must be more than 0; write e.g. 10s")
	}
	p.oneOf("log.level", cfg.Log.Level, "debug", "info", "warn", "error")
	p.oneOf("log.format", cfg.Log.Format, "json", "text")
	if len(fc.Upstreams) == 0 {
		p.add("upstreams", "no upstream is configured; add one under upstreams: (see proxy.yaml)")
	}
	names := make([]string, 0, len(fc.Upstreams))
	for name := range fc.Upstreams {
		names = append(names, name)
	}
	sort.Strings(names)
	prefixes := map[string]string{}
	for _, name := range names {
		u := p.upstream(name, fc.Upstreams[name], dir)
		if cfg.Store.Type == "redis" && cfg.Store.LockTTL <= u.Token.Timeout {
			p.add("store.lock_ttl", "%s is not longer than upstreams.%s.token.timeout (%s): a replica must finish a token request while it holds the lock, or another may redeem the same refresh token; write e.g. %s",
				cfg.Store.LockTTL, name, u.Token.Timeout, u.Token.Timeout+5*time.Second)
		}
		if other, dup := prefixes[u.PathPrefix]; dup {
			p.add("upstreams."+name+".path_prefix", "%q is also the prefix of upstream %q; give each upstream its own", u.PathPrefix, other)
		}
		prefixes[u.PathPrefix] = name
		cfg.Upstreams = append(cfg.Upstreams, u)
	}
	return cfg
}

func (p *Problems) store(fs fileStore, dir string) Store {
	st := Store{Type: orDefault(fs.Type, "file"), Path: orDefault(fs.Path, "./data/tokens.json")}
	p.oneOf("store.type", st.Type, "file", "memory", "redis")
	if !filepath.IsAbs(st.Path) {
		st.Path = filepath.Join(dir, st.Path)
	}
	if st.Type != "redis" {
		for key, v := range map[string]string{"url": fs.URL + fs.URLFile, "mode": fs.Mode, "key_prefix": fs.KeyPrefix, "lock_ttl": fs.LockTTL,
			"encryption_key": fs.EncryptionKey + fs.EncryptionKeyFile} {
			if v != "" {
				p.add("store."+key, "applies only to store.type: redis; remove it, or write type: redis")
			}
		}
		return st
	}
	// A path left over (type set to redis by AUTHPROXY_STORE_TYPE over a
	// file store's config) is harmless: nothing is written there.
	st.Path = ""
	st.Mode = orDefault(fs.Mode, "standalone")
	p.oneOf("store.mode", st.Mode, "standalone", "sentinel", "cluster")
	st.KeyPrefix = orDefault(fs.KeyPrefix, "authproxy:")
	st.LockTTL = p.duration("store.lock_ttl", fs.LockTTL, defaultLockTTL)
	st.URL = p.secretValue("store", "url", fs.URL, fs.URLFile, dir, true)
	if st.URL != "" {
		u, err := url.Parse(st.URL.Reveal())
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			// Not quoted: it may hold a password.
			p.add("store.url", "is not a Redis URL; write e.g. redis://127.0.0.1:6379/0, or rediss://user:${REDIS_PASSWORD}@host:6380/0 for TLS")
		} else if st.Mode == "sentinel" && u.Query().Get("master_name") == "" {
			p.add("store.url", "with mode: sentinel, the URL is a sentinel's and names the master; write e.g. redis://sentinel-1:26379/0?master_name=mymaster&addr=sentinel-2:26379")
		}
	}
	if st.LockTTL < time.Second {
		p.add("store.lock_ttl", "must be at least 1s; write e.g. 15s")
	}
	if key := p.secretValue("store", "encryption_key", fs.EncryptionKey, fs.EncryptionKeyFile, dir, false); key != "" {
		raw, ok := decodeKey(key.Reveal())
		if !ok {
			p.add("store.encryption_key", "must be 32 random bytes in base64 (44 characters) or hex (64); make one with: openssl rand -base64 32")
		}
		st.EncryptionKey = Secret(raw)
	}
	return st
}

// decodeKey reads a 32-byte key written in base64 or hex.
func decodeKey(s string) ([]byte, bool) {
	s = strings.TrimSpace(s)
	for _, dec := range []func(string) ([]byte, error){hex.DecodeString, base64.StdEncoding.DecodeString,
		base64.RawStdEncoding.DecodeString, base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString} {
		if b, err := dec(s); err == nil && len(b) == 32 {
			return b, true
		}
	}
	return nil, false
}

func (p *Problems) upstream(name string, fu fileUpstream, dir string) Upstream {
	key := "upstreams." + name
	if !namePattern.MatchString(name) {
		p.add(key, "the name may hold only lower-case letters, digits, - and _")
	}
	u := Upstream{
		Name:        name,
		Target:      p.url(key+".target", fu.Target),
		Timeout:     p.duration(key+".upstream_timeout", fu.Timeout, defaultUpstreamTimeout),
		IdleTimeout: p.duration(key+".upstream_idle_timeout", fu.Idle, defaultUpstreamIdle),
	}
	if u.Target != nil && u.Target.User != nil {
		p.add(key+".target", "must not hold credentials; the proxy supplies them")
	}
	prefix := "/" + name
	if fu.PathPrefix != nil {
		prefix = *fu.PathPrefix
	}
	if prefix != "" && !prefixPattern.MatchString(prefix) || strings.Contains(prefix, "/./") || strings.Contains(prefix+"/", "/../") {
		p.add(key+".path_prefix", "%q is not a plain path; write e.g. /%s, or \"\" to send every request here", prefix, name)
	}
	u.PathPrefix = strings.TrimSuffix(prefix, "/")

	ft, tk := fu.Token, key+".token"
	u.Token = Token{
		GrantType:       orDefault(ft.GrantType, "client_credentials"),
		ClientID:        ft.ClientID,
		AuthMethod:      orDefault(ft.AuthMethod, "client_secret_post"),
		BodyFormat:      orDefault(ft.BodyFormat, "form"),
		Scopes:          ft.Scopes,
		Params:          ft.Params,
		RefreshBefore:   p.duration(tk+".refresh_before", ft.RefreshBefore, defaultRefreshBefore),
		DefaultLifetime: p.duration(tk+".default_lifetime", ft.DefaultLifetime, 0),
		MinLifetime:     p.duration(tk+".min_lifetime", ft.MinLifetime, defaultMinLifetime),
		Timeout:         p.duration(tk+".timeout", ft.Timeout, defaultTokenTimeout),
	}
	p.oneOf(tk+".grant_type", u.Token.GrantType, "client_credentials", "refresh_token")
	if tu := p.url(tk+".url", ft.URL); tu != nil {
		u.Token.URL = tu.String()
	}
	if ft.ClientID == "" {
		p.add(tk+".client_id", "required; write the client id the API gave you, or ${ENV_VAR}")
	}
	refreshGrant := u.Token.GrantType == "refresh_token"
	// A refresh-token client may be public (no secret, PKCE at login).
	if !refreshGrant || ft.ClientSecret != "" || ft.ClientSecretFile != "" {
		u.Token.ClientSecret = p.secretValue(tk, "client_secret", ft.ClientSecret, ft.ClientSecretFile, dir, true)
	}
	if refreshGrant {
		u.Token.RefreshToken = p.secretValue(tk, "refresh_token", ft.RefreshToken, ft.RefreshTokenFile, dir, false)
		if ft.AuthorizeURL != "" {
			if au := p.url(tk+".authorize_url", ft.AuthorizeURL); au != nil {
				u.Token.AuthorizeURL = au.String()
			}
		}
		u.Token.RedirectURI = orDefault(ft.RedirectURI, "http://127.0.0.1:8085/callback")
		if ru := p.url(tk+".redirect_uri", u.Token.RedirectURI); ru != nil && !isLoopback(ru.Hostname()) {
			p.add(tk+".redirect_uri", "must be on this machine (localhost or 127.0.0.1), where authproxy login listens for it")
		}
	} else if ft.RefreshToken != "" || ft.RefreshTokenFile != "" || ft.AuthorizeURL != "" || ft.RedirectURI != "" {
		p.add(tk+".grant_type", "refresh_token, authorize_url and redirect_uri go with grant_type: refresh_token")
	}
	p.oneOf(tk+".auth_method", u.Token.AuthMethod, "client_secret_post", "client_secret_basic")
	p.oneOf(tk+".body_format", u.Token.BodyFormat, "form", "json")
	for k := range ft.Params {
		if reservedParam[strings.ToLower(k)] {
			p.add(tk+".params."+k, "is set by the proxy; remove it (scopes go in token.scopes)")
		}
	}
	if u.Token.Timeout <= 0 {
		p.add(tk+".timeout", "must be more than 0; write e.g. 10s")
	}
	if u.Token.MinLifetime < time.Second {
		p.add(tk+".min_lifetime", "must be at least 1s; write e.g. 30s")
	}

	fi, ik := fu.Inject, key+".inject"
	u.Inject = Inject{Header: orDefault(fi.Header, "Authorization"), Format: orDefault(fi.Format, "Bearer {token}"), Headers: fi.Headers}
	if !headerPattern.MatchString(u.Inject.Header) || strings.EqualFold(u.Inject.Header, "host") {
		p.add(ik+".header", "%q is not a header name you can set; write e.g. Authorization", u.Inject.Header)
	}
	if !strings.Contains(u.Inject.Format, "{token}") || strings.ContainsAny(u.Inject.Format, "\r\n") {
		p.add(ik+".format", "%q must contain {token} on one line; write e.g. \"Bearer {token}\", or \"{token}\" for the raw token", u.Inject.Format)
	}
	for h, v := range fi.Headers {
		if !headerPattern.MatchString(h) || strings.EqualFold(h, "host") || strings.EqualFold(h, u.Inject.Header) {
			p.add(ik+".headers."+h, "is not a header name you can set here")
		}
		if strings.ContainsAny(v, "\r\n") {
			p.add(ik+".headers."+h, "the value must be on one line")
		}
	}

	fr, rk := fu.Replay, key+".replay"
	u.Replay = Replay{OnStatus: fr.OnStatus, MaxBody: p.size(rk+".max_body", fr.MaxBody, defaultMaxBody)}
	if fr.OnStatus == nil {
		u.Replay.OnStatus = []int{401}
	}
	for i, s := range u.Replay.OnStatus {
		if s < 400 || s > 599 {
			p.add(fmt.Sprintf("%s.on_status[%d]", rk, i), "%d is not an error status; write e.g. [401] or [401, 403]", s)
		}
	}
	return u
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

func (p *Problems) url(key, s string) *url.URL {
	if s == "" {
		p.add(key, "required; write an absolute URL such as https://api.example.com")
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		if strings.ContainsAny(s, "?@") {
			// Not quoted: a query or user info may hold a key.
			p.add(key, "is not an absolute http(s) URL; write e.g. https://api.example.com")
		} else {
			p.add(key, "%q is not an absolute http(s) URL; write e.g. https://api.example.com", s)
		}
		return nil
	}
	if u.Fragment != "" {
		p.add(key, "must not have a #fragment")
	}
	return u
}

// secretValue reads key or key_file (relative to dir); exactly one may
// be set, and one must be if required.
func (p *Problems) secretValue(prefix, key, value, file, dir string, required bool) Secret {
	k, kf := prefix+"."+key, prefix+"."+key+"_file"
	switch {
	case value != "" && file != "":
		p.add(kf, "set either %s or %s_file, not both", key, key)
	case file != "":
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			p.add(kf, "cannot read it: %v", err)
			return ""
		}
		value = strings.TrimRight(string(b), "\r\n")
		if value == "" {
			p.add(kf, "%s is empty", file)
		}
	case value == "" && required:
		p.add(k, "required; write %s: ${ENV_VAR} or %s_file: /run/secrets/NAME", key, key)
	}
	return Secret(value)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (p *Problems) duration(key, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		p.add(key, "%q is not a duration; write it with a unit, like 30s, 10m or 1h", s)
		return def
	}
	return d
}

var sizePattern = regexp.MustCompile(`^(?i)\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?\s*$`)

var sizeUnits = map[string]int64{"": 1, "b": 1, "kb": 1e3, "kib": 1 << 10, "mb": 1e6, "mib": 1 << 20, "gb": 1e9, "gib": 1 << 30,
	"tb": 1e12, "tib": 1 << 40}

// maxSize is the largest size accepted; the error for a larger one names it.
const maxSize = 1 << 40

func (p *Problems) size(key, s string, def int64) int64 {
	if s == "" {
		return def
	}
	m := sizePattern.FindStringSubmatch(s)
	if m == nil {
		p.add(key, "%q is not a size; write e.g. 1MiB, 512KiB or 0", s)
		return def
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	unit := sizeUnits[strings.ToLower(m[2])]
	if err != nil || n > maxSize/unit {
		p.add(key, "%q is too large; write at most 1TiB", s)
		return def
	}
	return n * unit
}

func (p *Problems) oneOf(key, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	p.add(key, "%q is not allowed; write one of %s", v, strings.Join(allowed, ", "))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
