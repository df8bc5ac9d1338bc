package config

import (
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/authproxy/authproxy/pki"
)

// The checks here are shared by several sections.

// url reads an absolute http(s) URL; key is required.
func (p *Problems) url(key, s string) *url.URL {
	if s == "" {
		p.required(key, nil, "required; write an absolute URL such as https://api.example.com")
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
		b, ok := p.secretFile(kf, file)
		if !ok {
			return ""
		}
		value = strings.TrimRight(string(b), "\r\n")
		if value == "" {
			p.add(kf, "%s is empty", file)
		}
	case value == "" && required:
		p.required(k, []string{kf}, "required; write %s: ${ENV_VAR} or %s_file: /run/secrets/NAME", key, key)
	}
	return Secret(value)
}

// maxSecretFile bounds a secret file: a secret is short, and a path
// mistyped as a log file or a device must not be read whole.
const maxSecretFile = 64 << 10

// secretFile reads the secret file path for key. A regular file or a
// pipe (a shell's <(...)): a pipe is opened without waiting for a writer,
// so that one nobody writes to is an empty secret, not a config loading
// that never ends. Devices and sockets are problems.
func (p *Problems) secretFile(key, path string) ([]byte, bool) {
	if p.notAFile(key, path, true) {
		return nil, false
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		p.add(key, "cannot read it: %v", err)
		return nil, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	switch {
	case err != nil:
		p.add(key, "cannot read it: %v", err)
		return nil, false
	case len(b) > maxSecretFile:
		p.add(key, "%s is over 64 KiB; the file must hold the secret alone", path)
		return nil, false
	}
	return b, true
}

// notAFile reports, as a problem for key, a path that is a directory or
// anything but a regular file (a named pipe is taken if pipeOK). It is
// looked at before it is opened: opening a named pipe blocks until a
// writer comes. A path that cannot be looked at is left to the opening.
func (p *Problems) notAFile(key, path string, pipeOK bool) bool {
	fi, err := os.Stat(path)
	switch {
	case err != nil, fi.Mode().IsRegular(), pipeOK && fi.Mode()&os.ModeNamedPipe != 0:
		return false
	case fi.IsDir():
		p.add(key, "%s is a directory; write the path of the file in it", path)
	default:
		p.add(key, "%s is not a regular file (%s); write the path of the file itself", path, pki.FileKind(fi.Mode()))
	}
	return true
}

// readableFile returns path, taken from dir if relative, after checking
// that it can be opened; "" stays "".
func (p *Problems) readableFile(key, path, dir string) string {
	if path == "" {
		return ""
	}
	path = absPath(path, dir)
	p.readable(key, path)
	return path
}

// readable reports whether path is a file that can be opened, and if not
// records why as a problem for key.
func (p *Problems) readable(key, path string) bool {
	if p.notAFile(key, path, false) {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		p.add(key, "cannot read it: %v", err)
		return false
	}
	f.Close()
	return true
}

// absPath returns path taken from dir if relative; "" stays "". For the
// files a platform writes, which need not exist yet when the config is
// read.
func absPath(path, dir string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// oneOf reports whether v is one of allowed, and if not says so, with
// the one it likely is (client-credentials for client_credentials), if
// any, else all of them.
func (p *Problems) oneOf(key, v string, allowed ...string) bool {
	if slices.Contains(allowed, v) {
		return true
	}
	fold := strings.NewReplacer("-", "_").Replace
	folded := make([]string, len(allowed))
	for i, a := range allowed {
		folded[i] = fold(strings.ToLower(a))
	}
	if near := closest(fold(strings.ToLower(v)), folded); near != "" {
		p.add(key, "%q is not allowed; did you mean %s?", v, allowed[slices.Index(folded, near)])
	} else {
		p.add(key, "%q is not allowed; write one of %s", v, strings.Join(allowed, ", "))
	}
	return false
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
