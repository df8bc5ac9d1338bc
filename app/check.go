package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/authproxy/authproxy/auth"
	"github.com/authproxy/authproxy/config"
	"github.com/authproxy/authproxy/pki"
)

// checkCommand is `authproxy check`: the config, checked as serve would
// load it.
var checkCommand = command{
	name: "check", args: "--config FILE", needsConfig: true, summary: "validate the config and exit",
	about: `Load the config as serve would, ${VAR}s and secret files included, parse
the private keys and certificates it names, and report every problem,
each with its key and what to write. Warn, without failing, of a key file
others can read and of a token file the platform has not written yet.
Exit 0 if there is no problem, 2 if there is.`,
	example: "authproxy check --config proxy.yaml",
	flags: func(fs *flag.FlagSet, opts Options) func(context.Context, string) error {
		path := configFlag(fs, opts, "")
		return func(_ context.Context, _ string) error { return check(*path, opts) }
	},
}

// check runs `authproxy check`; runCommand has refused a missing --config.
func check(path string, opts Options) error {
	// Config asks about each upstream's credentials as it checks the
	// rest, so that every problem is said in one run; what is only risky
	// is said beside them.
	var warnings []string
	cfg, err := config.Load(path, config.Options{Lookup: opts.LookupEnv, Env: opts.LookupEnv, CheckUpstream: func(u config.Upstream) config.Problems {
		warnings = append(warnings, credentialWarnings(u)...)
		return credentialProblems(u)
	}})
	if cfg != nil {
		warnings = append(warnings, dpopFleetWarnings(cfg)...)
	}
	for _, w := range warnings {
		fmt.Fprintf(opts.Stderr, "warning: %s\n", w)
	}
	if err != nil {
		return refuse(err)
	}
	fmt.Fprintf(opts.Stdout, "%s: OK, %d upstream(s)\n", path, len(cfg.Upstreams))
	return nil
}

// credentialProblems asks pki and auth about the files a loaded config names,
// which config has only found readable: whether each private key parses
// and fits its signing_alg, whether each certificate matches its key,
// whether each CA file holds certificates, whether each certificate is
// valid now, whether a client_secret_jwt secret is long enough for its
// algorithm.
//
// This is app's, not config's: config knows the keys and nothing of what
// the files mean, auth knows keys and certificates and nothing of
// proxy.yaml, and app is where the two meet. check hands it to config
// (config.Options.CheckUpstream), which reports its problems with its
// own. The proxy itself meets the same errors when it builds the token
// sources, so serve does not ask, unless building fails (see
// credentialError).
func credentialProblems(u config.Upstream) (problems config.Problems) {
	problem := func(key string, err error) {
		problems = append(problems, config.Problem{Key: key, Message: err.Error()})
	}
	t, tk := u.Token, "upstreams."+u.Name+".token"
	if t.PrivateKeyFile != "" {
		if key, cert, err := pki.ReadKeyFile(t.PrivateKeyFile); err != nil {
			problem(tk+".private_key_file", err)
		} else {
			if t.SigningAlg != "" {
				if err := auth.CheckSigningAlg(key, auth.SigningAlg(t.SigningAlg)); err != nil {
					problem(tk+".signing_alg", err)
				}
			}
			if err := pki.CheckValidity(t.PrivateKeyFile, cert, time.Now()); err != nil {
				problem(tk+".private_key_file", err)
			}
		}
	}
	if t.AuthMethod == string(auth.ClientSecretJWT) {
		alg := auth.SigningAlg(t.SigningAlg)
		if alg == "" {
			alg = auth.HS256
		}
		if err := auth.CheckSecretAlg(alg, len(t.ClientSecret.Reveal())); err != nil {
			problem(tk+".client_secret", err)
		}
	}
	checkTLS(tk+".tls", t.TLS, problem)
	checkTLS("upstreams."+u.Name+".tls", u.TLS, problem)
	checkDPoP(u, problem)
	return problems
}

// credentialError names the config key behind err, an error of building
// upstream u of cfg. Building meets what check refuses (a key that does
// not parse, a secret too short for its algorithm) as auth says it, which
// knows nothing of proxy.yaml but which of its Settings is at fault
// (auth.SettingError); asking credentialProblems, as check does, keeps
// what is said of each key decided in one place. It is asked only once
// building has failed, so that a good config's keys are parsed once. Only
// the problems at the key of err's cause are reported: another one, such
// as an expired certificate, which serve tolerates, must not stand in for
// the real cause; but the same problem (the same file or secret) at any
// other key is. An error it does not account for is returned as it is.
func credentialError(cfg *config.Config, u config.Upstream, err error) error {
	key := credentialKey(u.Name, err)
	if key == "" {
		return err
	}
	var causes []string
	for _, p := range credentialProblems(u) {
		if p.Key == key {
			causes = append(causes, p.Message)
		}
	}
	if len(causes) == 0 {
		return err
	}
	// The same file or secret at other keys, of this upstream or another,
	// fails alike; naming each makes one start show every place to fix.
	var problems config.Problems
	for _, o := range cfg.Upstreams {
		for _, p := range credentialProblems(o) {
			if slices.Contains(causes, p.Message) {
				problems = append(problems, p)
			}
		}
	}
	return cfg.Report(problems)
}

// upstreamTLSError is an error of loading upstream's own tls files, met
// building its transport.
type upstreamTLSError struct{ err error }

func (e upstreamTLSError) Error() string { return e.err.Error() }
func (e upstreamTLSError) Unwrap() error { return e.err }

// tokenSettingKeys are the keys under upstreams.NAME.token of the auth
// Settings that a SettingError blames.
var tokenSettingKeys = map[auth.Setting]string{
	auth.SettingPrivateKeyFile: "private_key_file",
	auth.SettingSigningAlg:     "signing_alg",
	auth.SettingClientSecret:   "client_secret",
	auth.SettingTLS:            "tls",
	auth.SettingDPoPKeyFile:    "dpop.private_key_file",
	auth.SettingDPoPSigningAlg: "dpop.signing_alg",
}

// credentialKey is the key of upstream name that err, an error of
// building it, blames; "" if err blames none.
func credentialKey(name string, err error) string {
	var setting *auth.SettingError
	switch {
	case errors.As(err, &setting) && tokenSettingKeys[setting.Setting] != "":
		return "upstreams." + name + ".token." + tokenSettingKeys[setting.Setting]
	case errors.As(err, new(upstreamTLSError)):
		return "upstreams." + name + ".tls"
	}
	return ""
}

// credentialWarnings is what is only risky or ignored, for check and
// for serve's start: a key no longer used, a key that others can read,
// and a token file the platform has not written yet (the proxy reads
// those for every request, so they may come later). It parses nothing. A key file that cannot be looked at is
// not risky but unusable, which config or credentialProblems reports.
func credentialWarnings(u config.Upstream) (warnings []string) {
	warn := func(key string, err error) { warnings = append(warnings, key+": "+err.Error()) }
	keyFileMode := func(key, path string) {
		if path != "" {
			if err := pki.CheckKeyFileMode(path); err != nil && !errors.Is(err, pki.ErrKey) {
				warn(key, err)
			}
		}
	}
	t, tk := u.Token, "upstreams."+u.Name+".token"
	for _, o := range t.Obsolete {
		warnings = append(warnings, o.Key+": "+o.Message)
	}
	keyFileMode(tk+".private_key_file", t.PrivateKeyFile)
	if t.DPoP != nil {
		keyFileMode(tk+".dpop.private_key_file", t.DPoP.PrivateKeyFile)
	}
	for _, f := range []struct{ key, path string }{
		{"client_assertion_file", t.ClientAssertionFile}, {"assertion_file", t.AssertionFile},
	} {
		if f.path != "" {
			if _, err := auth.AssertionFile(f.path).Assertion(); err != nil {
				warn(tk+"."+f.key, fmt.Errorf("%w (the proxy reads it for every token request: fine if the platform writes it later)", err))
			}
		}
	}
	for _, f := range []struct{ key, path string }{{"subject_token_file", t.SubjectTokenFile}, {"actor_token_file", t.ActorTokenFile}} {
		if f.path != "" {
			if _, err := auth.ReadTokenFile(f.path); err != nil {
				warn(tk+"."+f.key, fmt.Errorf("%w (the proxy reads it for every token request: fine if the platform writes it later)", err))
			}
		}
	}
	keyFileMode(tk+".tls.key_file", t.TLS.KeyFile)
	keyFileMode("upstreams."+u.Name+".tls.key_file", u.TLS.KeyFile)
	return warnings
}

// checkTLS loads a TLS section's files as the proxy will.
func checkTLS(key string, t config.TLS, problem func(string, error)) {
	if t == (config.TLS{}) {
		return
	}
	if _, cert, err := pki.NewTLSConfig(tlsFiles(t)); err != nil {
		problem(key, err)
	} else if cert != nil {
		if err := pki.CheckValidity(t.CertFile, cert.Certificate().Leaf, time.Now()); err != nil {
			problem(key+".cert_file", err)
		}
	}
}
