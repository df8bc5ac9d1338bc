package proxy

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxPathDecodes is how many layers of percent-encoding the dot-segment
// check peels off. A path still encoded deeper is refused: no API needs
// it, and some stack in front of the upstream might peel one more.
const maxPathDecodes = 4

// climbsOut reports whether any reading of the escaped request path has
// a dot segment, so that some server behind the proxy could take it as a
// step up, out of the target's base path. It reads the path as sent and
// after each layer of percent-decoding (an upstream, or a framework
// behind it, may decode again: %252e%252e), and in each reading counts as
// a separator what some server does: "/", "\" (IIS, ASP.NET, Windows) and
// their look-alikes (NFKC folding: sepLookalikes). A segment counts as a
// dot segment when, cut at ";" (Tomcat's path parameters: "..;x") or NUL
// (C string truncation), it is made of dots (or dotLookalikes) only,
// ignoring spaces (Windows drops trailing dots and spaces from names:
// "...", ".. ").
//
// Refusing every dot segment rather than resolving them is stricter than
// RFC 3986 needs, but no API path has one, and a path without them stays
// under the base path in every reading.
func climbsOut(escaped string) bool {
	p := escaped
	for range maxPathDecodes {
		if hasDotSegment(p) {
			return true
		}
		if strings.IndexByte(p, '%') < 0 {
			return false
		}
		next, err := url.PathUnescape(p)
		if err != nil || next == p {
			return false // not a valid encoding: nothing downstream decodes it further
		}
		p = next
	}
	next, err := url.PathUnescape(p)
	return hasDotSegment(p) || err == nil && next != p
}

// dotLookalikes are what some server reads as dots: the characters NFKC
// folds to "." or "..." (full-width and small full stops, the dot leaders,
// the ellipsis), and the overlong UTF-8 for "." that old decoders took
// (Tomcat, CVE-2008-2938). sepLookalikes are those it folds to "/" or "\".
var (
	dotLookalikes = []struct {
		seq  string
		dots int
	}{
		{"\uff0e", 1}, // ．FULLWIDTH FULL STOP
		{"\ufe52", 1}, // ﹒SMALL FULL STOP
		{"\u2024", 1}, // ․ ONE DOT LEADER
		{"\u2025", 2}, // ‥ TWO DOT LEADER
		{"\u2026", 3}, // … HORIZONTAL ELLIPSIS
		{"\xc0\xae", 1},
	}
	sepLookalikes = []string{
		"\uff0f", // ／FULLWIDTH SOLIDUS
		"\uff3c", // ＼FULLWIDTH REVERSE SOLIDUS
		"\ufe68", // ﹨SMALL REVERSE SOLIDUS
	}
)

// hasDotSegment reports whether p, split at every separator, has a
// segment of dots only (see climbsOut). It allocates nothing.
func hasDotSegment(p string) bool {
	dots, other, cut := 0, false, false
	for i := 0; i <= len(p); {
		sep := 0
		switch {
		case i == len(p) || p[i] == '/' || p[i] == '\\':
			sep = 1
		case p[i] >= utf8.RuneSelf:
			for _, s := range sepLookalikes {
				if strings.HasPrefix(p[i:], s) {
					sep = len(s)
				}
			}
		}
		if sep > 0 {
			if dots > 0 && !other {
				return true
			}
			dots, other, cut = 0, false, false
			i += sep
			continue
		}
		switch c := p[i]; {
		case cut:
		case c == '.':
			dots++
		case c >= utf8.RuneSelf:
			size := 0
			for _, l := range dotLookalikes {
				if strings.HasPrefix(p[i:], l.seq) {
					dots, size = dots+l.dots, len(l.seq)
					break
				}
			}
			if size > 0 {
				i += size
				continue
			}
			other = true
		case c == ';' || c == 0:
			cut = true
		case c == ' ' || c == '\t':
		default:
			other = true
		}
		i++
	}
	return false
}
