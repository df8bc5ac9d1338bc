package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
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

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("redis %s: %w", op, err)
}
