package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRedisStore(t *testing.T) {
	key := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // base64 of 32 bytes
	file := "store:\n  type: redis\n  url: redis://:${REDIS_PASSWORD}@127.0.0.1:6379/0\n  encryption_key: ${STORE_KEY}\n" + minimal
	env := map[string]string{"REDIS_PASSWORD": "pa55", "STORE_KEY": key}
	cfg, err := Parse([]byte(file), Options{Lookup: lookup(env), NoEnvOverrides: true})
	if err != nil {
		t.Fatal(err)
	}
	st := cfg.Store
	if st.Type != "redis" || st.URL.Reveal() != "redis://:pa55@127.0.0.1:6379/0" || st.KeyPrefix != "authproxy:" ||
		st.LockTTL != 15*time.Second || st.Mode != "standalone" || st.EncryptionKey.Reveal() != "0123456789abcdef0123456789abcdef" || st.Path != "" {
		t.Errorf("store %+v", st)
	}
	if s := fmt.Sprintf("%v %+v", cfg, st); strings.Contains(s, "pa55") || strings.Contains(s, "0123456789abcdef") {
		t.Errorf("formatting the store shows a secret: %s", s)
	}

	bad := "store:\n  type: redis\n  url: http://user:pa55@host\n  lock_ttl: 5s\n  encryption_key: short\n" + minimal
	_, err = Parse([]byte(bad), Options{NoEnvOverrides: true})
	for _, want := range []string{
		"store.url: is not a Redis URL; write e.g. redis://127.0.0.1:6379/0",
		"store.lock_ttl: 5s is not longer than upstreams.api.token.timeout (10s)",
		"store.encryption_key: must be 32 random bytes in base64 (44 characters) or hex (64); make one with: openssl rand -base64 32",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "pa55") {
		t.Errorf("the error quotes the URL's password: %v", err)
	}
	_, err = Parse([]byte("store:\n  type: redis\n  mode: sentinel\n  url: redis://s1:26379/0\n"+minimal), Options{NoEnvOverrides: true})
	if err == nil || !strings.Contains(err.Error(), "with mode: sentinel, the URL is a sentinel's and names the master") {
		t.Errorf("sentinel without master_name: %v", err)
	}
	_, err = Parse([]byte("store:\n  type: redis\n  mode: replicated\n  url: redis://s1:26379/0\n"+minimal), Options{NoEnvOverrides: true})
	if err == nil || !strings.Contains(err.Error(), `store.mode: "replicated" is not allowed; write one of standalone, sentinel, cluster`) {
		t.Errorf("bad mode: %v", err)
	}
	_, err = Parse([]byte("store:\n  type: redis\n"+minimal), Options{NoEnvOverrides: true})
	if err == nil || !strings.Contains(err.Error(), "store.url: required") {
		t.Errorf("no url: %v", err)
	}
	_, err = Parse([]byte("store:\n  type: file\n  key_prefix: x\n"+minimal), Options{NoEnvOverrides: true})
	if err == nil || !strings.Contains(err.Error(), "store.key_prefix: applies only to store.type: redis") {
		t.Errorf("a redis key on a file store: %v", err)
	}
}
