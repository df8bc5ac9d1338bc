package config

import (
	"fmt"
	"net"
	"time"
)

// The keys here are how the process serves: listen, shutdown_timeout,
// log, admin and limits.

// Defaults, as documented in docs/configuration.md.
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultAdminListen     = "127.0.0.1:9090"
	defaultShutdownTimeout = 30 * time.Second
	defaultMaxHeaderBytes  = 64 << 10
	defaultReadHeader      = 10 * time.Second
	defaultMaxRequestBody  = 10 << 20
	defaultIdleTimeout     = 2 * time.Minute
	defaultReplayMemory    = 64 << 20
	defaultBodyReadTimeout = 30 * time.Second
)

// Log is the log level ("debug", "info", "warn", "error") and format
// ("json", "text").
type Log struct {
	Level  string
	Format string
}

// Limits bound what a client may send.
type Limits struct {
	MaxHeaderBytes    int64
	ReadHeaderTimeout time.Duration
	MaxRequestBody    int64 // zero: no limit
	IdleTimeout       time.Duration
	ReplayMemory      int64         // all replay copies together; zero: none kept
	BodyReadTimeout   time.Duration // a request body stalled this long gets 408; zero: never
}

type fileLog struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

type fileAdmin struct {
	Listen string `mapstructure:"listen"`
}

type fileLimits struct {
	MaxHeaderBytes    *size     `mapstructure:"max_header_bytes"`
	ReadHeaderTimeout *duration `mapstructure:"read_header_timeout"`
	MaxRequestBody    *size     `mapstructure:"max_request_body"`
	IdleTimeout       *duration `mapstructure:"idle_timeout"`
	ReplayMemory      *size     `mapstructure:"replay_memory"`
	BodyReadTimeout   *duration `mapstructure:"body_read_timeout"`
}

// AdminListen reads a value of admin.listen: the address, or "" for
// "off". Load and AdminListenOf ask it.
func AdminListen(v string) (string, error) {
	if v == "off" {
		return "", nil
	}
	if _, _, err := net.SplitHostPort(v); err != nil {
		return v, fmt.Errorf("%q is not host:port; write e.g. 127.0.0.1:9090, or off", v)
	}
	return v, nil
}

// server checks the top-level keys and starts the Config with them.
func (p *Problems) server(fc *fileConfig) *Config {
	cfg := &Config{
		Listen:          orDefault(fc.Listen, DefaultListen),
		Log:             Log{Level: orDefault(fc.Log.Level, "info"), Format: orDefault(fc.Log.Format, "json")},
		ShutdownTimeout: fc.ShutdownTimeout.or(defaultShutdownTimeout),
		AdminListen:     orDefault(fc.Admin.Listen, DefaultAdminListen),
		Limits:          p.limits(fc.Limits),
	}
	var err error
	if cfg.AdminListen, err = AdminListen(cfg.AdminListen); err != nil {
		p.add("admin.listen", "%v", err)
	}
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		p.add("listen", "%q is not host:port; write e.g. 127.0.0.1:8080, or :8080 for every interface", cfg.Listen)
	}
	p.oneOf("log.level", cfg.Log.Level, "debug", "info", "warn", "error")
	p.oneOf("log.format", cfg.Log.Format, "json", "text")
	return cfg
}

func (p *Problems) limits(fl fileLimits) Limits {
	l := Limits{
		MaxHeaderBytes:    fl.MaxHeaderBytes.or(defaultMaxHeaderBytes),
		ReadHeaderTimeout: fl.ReadHeaderTimeout.or(defaultReadHeader),
		MaxRequestBody:    fl.MaxRequestBody.or(defaultMaxRequestBody),
		IdleTimeout:       fl.IdleTimeout.or(defaultIdleTimeout),
		ReplayMemory:      fl.ReplayMemory.or(defaultReplayMemory),
		BodyReadTimeout:   fl.BodyReadTimeout.or(defaultBodyReadTimeout),
	}
	if l.MaxHeaderBytes < 1<<10 {
		p.add("limits.max_header_bytes", "must be at least 1KiB; write e.g. 64KiB")
	}
	if l.ReadHeaderTimeout <= 0 {
		p.add("limits.read_header_timeout", "must be more than 0; write e.g. 10s")
	}
	return l
}
