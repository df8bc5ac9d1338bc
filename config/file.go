package config

// The file* structs mirror proxy.yaml key for key. Durations and sizes
// are kept as text here so that validation, not the decoder, reports them,
// with the key and an example of what to write.

type fileConfig struct {
	Listen          string                  `mapstructure:"listen"`
	Log             fileLog                 `mapstructure:"log"`
	ShutdownTimeout string                  `mapstructure:"shutdown_timeout"`
	Inbound         fileInbound             `mapstructure:"inbound"`
	Limits          fileLimits              `mapstructure:"limits"`
	Store           fileStore               `mapstructure:"store"`
	Admin           fileAdmin               `mapstructure:"admin"`
	Upstreams       map[string]fileUpstream `mapstructure:"upstreams"`
}

type fileLog struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

type fileUpstream struct {
	Target     string     `mapstructure:"target"`
	PathPrefix *string    `mapstructure:"path_prefix"` // nil: unset, so "/<name>"
	Timeout    string     `mapstructure:"upstream_timeout"`
	Idle       string     `mapstructure:"upstream_idle_timeout"`
	Token      fileToken  `mapstructure:"token"`
	Inject     fileInject `mapstructure:"inject"`
	Replay     fileReplay `mapstructure:"replay"`
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
	Params           map[string]string `mapstructure:"params"`
	RefreshBefore    string            `mapstructure:"refresh_before"`
	DefaultLifetime  string            `mapstructure:"default_lifetime"`
	MinLifetime      string            `mapstructure:"min_lifetime"`
	Timeout          string            `mapstructure:"timeout"`
	RefreshToken     string            `mapstructure:"refresh_token"`
	RefreshTokenFile string            `mapstructure:"refresh_token_file"`
	AuthorizeURL     string            `mapstructure:"authorize_url"`
	RedirectURI      string            `mapstructure:"redirect_uri"`
}

type fileInject struct {
	Header  string            `mapstructure:"header"`
	Format  string            `mapstructure:"format"`
	Headers map[string]string `mapstructure:"headers"`
}

type fileReplay struct {
	OnStatus []int  `mapstructure:"on_status"`
	MaxBody  string `mapstructure:"max_body"`
}

type fileInbound struct {
	APIKeys          []string `mapstructure:"api_keys"`
	APIKeyHeader     string   `mapstructure:"api_key_header"`
	AllowCIDRs       []string `mapstructure:"allow_cidrs"`
	ForwardedHeaders string   `mapstructure:"forwarded_headers"`
}

type fileLimits struct {
	MaxHeaderBytes    string `mapstructure:"max_header_bytes"`
	ReadHeaderTimeout string `mapstructure:"read_header_timeout"`
	MaxRequestBody    string `mapstructure:"max_request_body"`
	IdleTimeout       string `mapstructure:"idle_timeout"`
	ReplayMemory      string `mapstructure:"replay_memory"`
	BodyReadTimeout   string `mapstructure:"body_read_timeout"`
}

type fileStore struct {
	Type              string `mapstructure:"type"`
	Path              string `mapstructure:"path"`
	Mode              string `mapstructure:"mode"`
	URL               string `mapstructure:"url"`
	URLFile           string `mapstructure:"url_file"`
	KeyPrefix         string `mapstructure:"key_prefix"`
	LockTTL           string `mapstructure:"lock_ttl"`
	EncryptionKey     string `mapstructure:"encryption_key"`
	EncryptionKeyFile string `mapstructure:"encryption_key_file"`
}

type fileAdmin struct {
	Listen string `mapstructure:"listen"`
}
