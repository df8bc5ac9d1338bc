package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Redis keeps tokens in a Redis server that several replicas of the
// proxy share. Per upstream client it holds the access token and a fetch
// lock (auth.Shared) and the refresh-token record (auth.Store with Swap).
//
// Keys are KeyPrefix + "{" + key + "}:token" (a hash: id, epoch, data),
// ":lock" (the holder's owner string, with a TTL), ":epoch" (a counter of
// the 401s acted on) and, per upstream name,
// KeyPrefix + "{" + name + "}:refresh" (a hash: data, rt, fp). The braces
// are a Redis Cluster hash tag: the keys one script touches share a slot.
// Changes are announced on KeyPrefix + "changed".
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	aead    cipher.AEAD // nil: values are stored as plain JSON
	channel string
	sub     *redis.PubSub
	stop    context.CancelFunc // ends the notification goroutine
	done    chan struct{}      // closed when it has ended

	mu      sync.Mutex
	waiters map[string]chan struct{} // key -> closed at its next change
}

// RedisOptions configure OpenRedis.
type RedisOptions struct {
	// Mode is "standalone" (the default), "sentinel" or "cluster".
	Mode string
	// URL is redis://[user:password@]host:port/db or rediss:// for TLS;
	// go-redis reads options such as dial_timeout from its query. With
	// Mode "sentinel" the host is a sentinel and the query names the
	// master (master_name=) and more sentinels (addr=); with "cluster",
	// more nodes (addr=).
	URL string
	// KeyPrefix starts every key, so that one Redis can serve several
	// fleets; "authproxy:" if empty.
	KeyPrefix string
	// EncryptionKey, if set, must be 32 bytes: values are then sealed with
	// AES-256-GCM, bound to their key's name.
	EncryptionKey []byte
}

// SetRedisLogger sends go-redis's own messages (reconnections) to log in
// place of the standard logger. go-redis has one logger per process, so
// this is for main to call once, not for each store.
func SetRedisLogger(log func(format string, args ...any)) { redis.SetLogger(redisLogger(log)) }

type redisLogger func(format string, args ...any)

func (l redisLogger) Printf(_ context.Context, format string, args ...any) { l(format, args...) }

var (
	_ auth.Store   = (*Redis)(nil)
	_ auth.Swapper = (*Redis)(nil)
	_ auth.Shared  = (*Redis)(nil)
)

// OpenRedis connects lazily: it fails only on bad options, so that the
// proxy starts while Redis is down (client-credentials upstreams fetch on
// their own until it is back). It starts the goroutine that listens for
// the fleet's notifications, which ends with ctx or Close, and Close
// waits for it.
func OpenRedis(ctx context.Context, o RedisOptions) (*Redis, error) {
	r := &Redis{prefix: o.KeyPrefix, waiters: map[string]chan struct{}{}, done: make(chan struct{})}
	if r.prefix == "" {
		r.prefix = "authproxy:"
	}
	if o.EncryptionKey != nil {
		block, err := aes.NewCipher(o.EncryptionKey)
		if err != nil || len(o.EncryptionKey) != 32 {
			return nil, errors.New("the encryption key must be 32 bytes (AES-256)")
		}
		if r.aead, err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
	}
	client, err := newRedisClient(o.Mode, o.URL)
	if err != nil {
		return nil, err
	}
	r.channel = r.prefix + "changed"
	r.client = client
	ctx, r.stop = context.WithCancel(ctx)
	r.sub = r.client.Subscribe(ctx, r.channel)
	// The channel resubscribes after Redis comes back; notifications sent
	// meanwhile are lost, which waiters cover by polling.
	msgs := r.sub.Channel(redis.WithChannelHealthCheckInterval(time.Second))
	go func() {
		defer close(r.done)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					return
				}
				r.notify(m.Payload)
			case <-ctx.Done():
				return
			}
		}
	}()
	return r, nil
}

// newRedisClient makes the client for mode, with timeouts short enough
// that a token fetch waiting on an unreachable Redis fails fast and
// client-credentials upstreams fall back at once.
func newRedisClient(mode, url string) (redis.UniversalClient, error) {
	// go-redis's messages can quote the URL, password and all.
	errURL := errors.New("store.url is not a Redis URL for store.mode " + mode + "; write e.g. redis://127.0.0.1:6379/0")
	fast := func(dial, read, write *time.Duration, retries *int, ctxTimeout *bool) {
		for _, d := range []*time.Duration{dial, read, write} {
			if *d == 0 {
				*d = time.Second
			}
		}
		if *retries == 0 {
			*retries = 1
		}
		*ctxTimeout = true
	}
	// Redis Enterprise's maintenance notifications are not used here.
	noMaint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	switch mode {
	case "sentinel":
		opt, err := redis.ParseFailoverURL(url)
		if err != nil || opt.MasterName == "" {
			return nil, errURL
		}
		fast(&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.MaxRetries, &opt.ContextTimeoutEnabled)
		return redis.NewFailoverClient(opt), nil
	case "cluster":
		opt, err := redis.ParseClusterURL(url)
		if err != nil {
			return nil, errURL
		}
		fast(&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.MaxRetries, &opt.ContextTimeoutEnabled)
		opt.MaintNotificationsConfig = noMaint
		return redis.NewClusterClient(opt), nil
	case "", "standalone":
		opt, err := redis.ParseURL(url)
		if err != nil {
			return nil, errURL
		}
		fast(&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.MaxRetries, &opt.ContextTimeoutEnabled)
		opt.MaintNotificationsConfig = noMaint
		return redis.NewClient(opt), nil
	}
	return nil, fmt.Errorf("store.mode %q is not standalone, sentinel or cluster", mode)
}

// Close stops the subscription and closes the connections.
func (r *Redis) Close() error {
	r.stop()
	err := r.sub.Close()
	<-r.done
	return errors.Join(err, r.client.Close())
}

// Ping checks that Redis answers.
func (r *Redis) Ping(ctx context.Context) error { return wrap("ping", r.client.Ping(ctx).Err()) }

// Durable reports whether Redis syncs every write to its append-only
// file, which refresh tokens need: a Redis restart must not lose the only
// valid one. It errs where CONFIG is disabled (managed services).
func (r *Redis) Durable(ctx context.Context) (bool, error) {
	conf, err := r.client.ConfigGet(ctx, "append*").Result()
	if err != nil {
		return false, wrap("config get", err)
	}
	return conf["appendonly"] == "yes" && conf["appendfsync"] == "always", nil
}

func (r *Redis) tokenKey(key string) string   { return r.prefix + "{" + key + "}:token" }
func (r *Redis) lockKey(key string) string    { return r.prefix + "{" + key + "}:lock" }
func (r *Redis) epochKey(key string) string   { return r.prefix + "{" + key + "}:epoch" }
func (r *Redis) recordKey(name string) string { return r.prefix + "{" + name + "}:refresh" }

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

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("redis %s: %w", op, err)
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
	// KEYS: record. ARGV: old digest, data, new digest, fingerprint.
	swapScript = redis.NewScript(`
local rt = redis.call('HGET', KEYS[1], 'rt')
if rt and redis.call('HGET', KEYS[1], 'fp') == ARGV[4] and rt ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'rt', ARGV[3], 'fp', ARGV[4])
return 1`)
)
