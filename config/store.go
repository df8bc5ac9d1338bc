package config

import (
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

const defaultLockTTL = 15 * time.Second

// Store is where tokens are kept: Type "file" (at Path), "memory", or
// "redis" (at URL, shared by every replica that names it).
type Store struct {
	Type string
	Path string
	// Mode is "standalone", "sentinel" or "cluster".
	Mode string
	// URL is redis:// or rediss://; it may hold a password.
	URL Secret
	// KeyPrefix starts every Redis key.
	KeyPrefix string
	// LockTTL bounds how long one replica may hold a token's fetch lock,
	// and so how long the others wait for a replica that died.
	LockTTL time.Duration
	// EncryptionKey, if set, is 32 bytes: tokens in Redis are sealed with
	// AES-256-GCM.
	EncryptionKey Secret
}

type fileStore struct {
	Type              string    `mapstructure:"type"`
	Path              string    `mapstructure:"path"`
	Mode              string    `mapstructure:"mode"`
	URL               string    `mapstructure:"url"`
	URLFile           string    `mapstructure:"url_file"`
	KeyPrefix         string    `mapstructure:"key_prefix"`
	LockTTL           *duration `mapstructure:"lock_ttl"`
	EncryptionKey     string    `mapstructure:"encryption_key"`
	EncryptionKeyFile string    `mapstructure:"encryption_key_file"`
}

func (p *Problems) store(fs fileStore, dir string) Store {
	st := Store{Type: orDefault(fs.Type, "file"), Path: orDefault(fs.Path, "./data/tokens.json")}
	p.oneOf("store.type", st.Type, "file", "memory", "redis")
	if !filepath.IsAbs(st.Path) {
		st.Path = filepath.Join(dir, st.Path)
	}
	if st.Type != "redis" {
		for key, set := range map[string]bool{"url": fs.URL+fs.URLFile != "", "mode": fs.Mode != "", "key_prefix": fs.KeyPrefix != "",
			"lock_ttl": fs.LockTTL != nil, "encryption_key": fs.EncryptionKey+fs.EncryptionKeyFile != ""} {
			if set {
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
	st.LockTTL = fs.LockTTL.or(defaultLockTTL)
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
