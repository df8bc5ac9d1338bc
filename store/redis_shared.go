package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/redis/go-redis/v9"
)

// How Redis holds the fleet's shared access tokens (auth.Shared): one
// per upstream client, with its fetch lock and its epoch of 401s.

// sharedToken is a token's stored form.
type sharedToken struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type,omitempty"`
	Scope       string    `json:"scope,omitempty"`
	Expiry      time.Time `json:"expiry,omitzero"`
	Obtained    time.Time `json:"obtained,omitzero"`
}

// LoadToken returns the token stored under key, or nil. A value that
// cannot be read (another encryption key) counts as none: the access
// token is replaced, not trusted.
func (r *Redis) LoadToken(ctx context.Context, key string) (*auth.SharedToken, error) {
	k := r.tokenKey(key)
	vals, err := r.client.HMGet(ctx, k, "id", "epoch", "data").Result()
	if err != nil {
		return nil, wrap("load token", err)
	}
	id, _ := vals[0].(string)
	epochText, _ := vals[1].(string)
	data, _ := vals[2].(string)
	epoch, err := strconv.ParseInt(epochText, 10, 64)
	if id == "" || data == "" || err != nil {
		return nil, nil
	}
	var st sharedToken
	plain, err := r.open(k, data)
	if err != nil || json.Unmarshal(plain, &st) != nil {
		return nil, nil
	}
	return &auth.SharedToken{ID: id, Epoch: epoch, Token: &auth.Token{AccessToken: st.AccessToken, TokenType: st.TokenType,
		Scope: st.Scope, Expiry: st.Expiry, Obtained: st.Obtained}}, nil
}

// Lock takes key's fetch lock with SET NX PX. The owner string is
// host:pid:random, so that an operator (or a test) can tell which replica
// holds a lock; the random part makes it this acquisition's alone.
func (r *Redis) Lock(ctx context.Context, key string, ttl time.Duration) (auth.Lock, error) {
	l := &redisLock{r: r, key: key, owner: ownerPrefix + rand.Text()}
	epoch, err := lockScript.Run(ctx, r.client, []string{r.lockKey(key), r.epochKey(key)}, l.owner, ttl.Milliseconds()).Int64()
	switch {
	case err != nil:
		return nil, wrap("lock", err)
	case epoch < 0:
		return nil, auth.ErrLocked
	}
	l.epoch = epoch
	return l, nil
}

// Reject starts a new epoch and clears the token, unless a 401 was acted
// on since epoch began.
func (r *Redis) Reject(ctx context.Context, key string, epoch int64) (int64, error) {
	cur, err := rejectScript.Run(ctx, r.client, []string{r.tokenKey(key), r.epochKey(key)}, epoch, r.channel, key).Int64()
	return cur, wrap("reject token", err)
}

// Changed returns a channel closed at key's next announced change.
func (r *Redis) Changed(key string) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := r.waiters[key]
	if ch == nil {
		ch = make(chan struct{})
		r.waiters[key] = ch
	}
	return ch
}

func (r *Redis) notify(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch := r.waiters[key]; ch != nil {
		close(ch)
		delete(r.waiters, key)
	}
}

var ownerPrefix = func() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d:", host, os.Getpid())
}()

type redisLock struct {
	r     *Redis
	key   string
	owner string
	epoch int64 // when the lock was taken
}

// Put stores t if the lock is still this owner's, with a TTL a minute
// past the token's lifetime so that dead tokens do not pile up.
func (l *redisLock) Put(ctx context.Context, id string, tok *auth.Token) (int64, error) {
	r, k := l.r, l.r.tokenKey(l.key)
	data, err := json.Marshal(sharedToken{AccessToken: tok.AccessToken, TokenType: tok.TokenType, Scope: tok.Scope,
		Expiry: tok.Expiry, Obtained: tok.Obtained})
	if err != nil {
		return 0, err
	}
	var ttl int64 // milliseconds; 0 keeps it until replaced
	if !tok.Expiry.IsZero() && !tok.Obtained.IsZero() {
		// The lifetime, not the expiry: the proxy's clock is its own.
		ttl = max(0, tok.Expiry.Sub(tok.Obtained)+time.Minute).Milliseconds()
	}
	n, err := putScript.Run(ctx, r.client, []string{r.lockKey(l.key), k}, l.owner, id, l.epoch, r.seal(k, data), ttl, r.channel, l.key).Int()
	switch {
	case err != nil:
		return 0, wrap("store token", err)
	case n == 0:
		return 0, auth.ErrLockLost
	}
	return l.epoch, nil
}

// Release deletes the lock if it is still this owner's.
func (l *redisLock) Release(ctx context.Context) error {
	_, err := releaseScript.Run(ctx, l.r.client, []string{l.r.lockKey(l.key)}, l.owner, l.r.channel, l.key).Result()
	return wrap("release lock", err)
}

// The scripts make each compare-and-act one step that no other replica
// can come between.
var (
	// KEYS: lock, epoch. ARGV: owner, ttl ms. Returns the epoch, or -1 if
	// another holds the lock.
	lockScript = redis.NewScript(`
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return -1 end
return tonumber(redis.call('GET', KEYS[2]) or '0')`)
	// KEYS: lock, token. ARGV: owner, id, epoch, data, ttl ms (0: none),
	// channel, key.
	putScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'id', ARGV[2], 'epoch', ARGV[3], 'data', ARGV[4])
if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1`)
	// KEYS: lock. ARGV: owner, channel, key.
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1`)
	// KEYS: token, epoch. ARGV: the rejected token's epoch, channel, key.
	// Returns the current epoch. Every stored token is of an epoch before
	// a new one, so it goes.
	rejectScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) < cur then return cur end
cur = redis.call('INCR', KEYS[2])
if redis.call('DEL', KEYS[1]) == 1 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return cur`)
)
