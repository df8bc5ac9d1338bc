package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/authproxy/authproxy/auth"
	"github.com/redis/go-redis/v9"
)

// How Redis holds refresh-token records (auth.Store, auth.Swapper), sealed
// with AES-GCM when an encryption key is set.

// Load returns the refresh-token record for name, or nil. Unlike an access
// token, a record that cannot be read is an error: it is never replaced
// unseen, since it may hold the only valid refresh token.
func (r *Redis) Load(ctx context.Context, name string) (*auth.Record, error) {
	k := r.recordKey(name)
	data, err := r.client.HGet(ctx, k, "data").Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("load record", err)
	}
	plain, err := r.open(k, data)
	if err != nil {
		return nil, fmt.Errorf("redis key %s: %w", k, err)
	}
	var rec auth.Record
	if err := json.Unmarshal(plain, &rec); err != nil {
		return nil, fmt.Errorf("redis key %s: %w", k, ErrCorrupt)
	}
	return &rec, nil
}

// Save replaces the record for name: `authproxy login` writes this way.
func (r *Redis) Save(ctx context.Context, name string, rec auth.Record) error {
	k := r.recordKey(name)
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	err = r.client.HSet(ctx, k, "data", r.seal(k, data), "rt", digest(rec.RefreshToken), "fp", rec.Fingerprint).Err()
	return wrap("save record", err)
}

// Swap saves rec for name if the stored refresh token is old (compared
// by digest, so that Lua never sees a token), or none is stored for
// rec's client.
func (r *Redis) Swap(ctx context.Context, name, old string, rec auth.Record) error {
	k := r.recordKey(name)
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	n, err := swapScript.Run(ctx, r.client, []string{k}, digest(old), r.seal(k, data), digest(rec.RefreshToken), rec.Fingerprint).Int()
	switch {
	case err != nil:
		return wrap("swap record", err)
	case n == 0:
		return auth.ErrRefreshTokenMoved
	}
	return nil
}

// sealed values start with this byte; plain ones are JSON and start with {.
const sealedMark = 1

func (r *Redis) seal(key string, plain []byte) string {
	if r.aead == nil {
		return string(plain)
	}
	out := make([]byte, 1+r.aead.NonceSize(), 1+r.aead.NonceSize()+len(plain)+r.aead.Overhead())
	out[0] = sealedMark
	rand.Read(out[1:])
	return string(r.aead.Seal(out, out[1:], plain, []byte(key)))
}

func (r *Redis) open(key, v string) ([]byte, error) {
	sealed := len(v) > 0 && v[0] == sealedMark
	switch {
	case r.aead == nil && sealed:
		return nil, errors.New("the value is encrypted; set store.encryption_key to the key it was written with")
	case r.aead == nil:
		return []byte(v), nil
	case !sealed:
		return nil, errors.New("the value is not encrypted, but store.encryption_key is set; log in again or remove the key")
	}
	n := r.aead.NonceSize()
	if len(v) < 1+n {
		return nil, errors.New("the encrypted value is truncated")
	}
	plain, err := r.aead.Open(nil, []byte(v[1:1+n]), []byte(v[1+n:]), []byte(key))
	if err != nil {
		return nil, errors.New("the value does not decrypt with store.encryption_key (another key, or altered)")
	}
	return plain, nil
}

// digest names a refresh token for comparison in Lua without revealing it.
func digest(token string) string {
	if token == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// swapScript saves a record only over the one it was redeemed from
// (or over none of its client's), in one step. KEYS: record. ARGV: old
// digest, data, new digest, fingerprint.
var swapScript = redis.NewScript(`
local rt = redis.call('HGET', KEYS[1], 'rt')
if rt and redis.call('HGET', KEYS[1], 'fp') == ARGV[4] and rt ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'rt', ARGV[3], 'fp', ARGV[4])
return 1`)
