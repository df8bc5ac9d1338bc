package config

import (
	"fmt"
	"strings"
)

// resolve is the one pass, after every check has run, that turns what
// the checks found into the problems to report: each once, in the words
// that fit what else was found. found is in the order the checks ran
// (decoding, the sections, Options.CheckUpstream); settings are the
// decoded file's, and emptied maps each key a set but empty variable
// left empty to the variable (see expand).
//
// In this order:
//   - A problem at a value that could not be read (unread), or inside
//     one, follows from that: "required" or "not a URL" would only repeat
//     it, and a newcomer with no variables set would read every problem
//     twice. The first reason found for a value is the one reported.
//   - A misspelt key whose look-alike is there too is only unknown: it
//     must not stand in for what that key lacks. One written both in its
//     section and beside it is there twice, and says so.
//   - A user who misspelt a required key wrote it all the same: when an
//     unknown key is the likely misspelling of the key, of a key that
//     would do instead, or of the section that holds it, the unknown
//     key's line says it is required, and "required" is not said again.
//   - A required key left empty by a variable set to "" names the
//     variable: the file has its ${VAR}, and "required; write
//     ${ENV_VAR}" would send the reader to look there.
//   - A problem from Options.CheckUpstream in a section
//     (upstreams.NAME.token, upstreams.NAME.tls) where a problem is
//     reported already is left out: a value there may be a default left
//     in place of a bad one, and what the check says of it would repeat
//     that problem or follow from it.
func (found Problems) resolve(settings map[string]any, emptied map[string]string) Problems {
	var read Problems
	for _, q := range found {
		if !read.unreadAt(q.Key) {
			read = append(read, q)
		}
	}
	for i, q := range read {
		if q.meant != "" && has(settings, q.meant) {
			read[i].meant = ""
			if q.under != "" && lastPart(q.meant) == lastPart(q.Key) {
				read[i].Message = fmt.Sprintf("unknown key here; %s: has one too: remove this one", q.under)
			}
		}
	}
	var out Problems
	for _, q := range read {
		switch {
		case q.wanted != nil && out.sayRequired(q.wanted):
			continue
		case q.batch > 0 && out.before(q.batch).in(checkedSection(q.Key)):
			continue
		case q.wanted != nil:
			q.Message = emptiedMessage(q, emptied)
		}
		out = append(out, q)
	}
	return out
}

// sayRequired has each misspelt key in p that is the likely misspelling of
// one of keys (a required key and those that would do instead), or of the
// section that holds it, say that it is required, and reports whether
// one does.
func (p Problems) sayRequired(keys []string) bool {
	said := false
	for i, q := range p {
		for _, k := range keys {
			switch {
			case q.meant == "":
			case q.meant == k:
				p[i].Message = q.unknown(meantRequired)
				said = true
			case strings.HasPrefix(k, q.meant+"."):
				p[i].Message = q.unknown(meantHoldsRequired)
				said = true
			}
		}
	}
	return said
}

// emptiedMessage is the message of q, a required key that is not set:
// its own, unless a variable set to "" left it, or a key that would do
// instead, empty.
func emptiedMessage(q Problem, emptied map[string]string) string {
	for _, k := range q.wanted {
		if name, ok := emptied[strings.ToLower(k)]; ok {
			return fmt.Sprintf("environment variable %s is set but empty; set it (export %s=...), or write the value in place of ${%s}", name, name, name)
		}
	}
	return q.Message
}

// before is the problems of p found before Options.CheckUpstream's batch:
// config's own and the earlier batches'.
func (p Problems) before(batch int) Problems {
	var out Problems
	for _, q := range p {
		if q.batch < batch {
			out = append(out, q)
		}
	}
	return out
}

// checkedSection is the section a problem of Options.CheckUpstream is in:
// upstreams.NAME.token for upstreams.NAME.token.client_secret.
func checkedSection(key string) string {
	if parts := strings.SplitN(key, ".", 4); len(parts) > 3 {
		return strings.Join(parts[:3], ".")
	}
	return key
}

// has reports whether settings, viper's nested maps, hold the dotted key.
func has(settings map[string]any, key string) bool {
	var v any = settings
	for part := range strings.SplitSeq(key, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[part]; !ok {
			return false
		}
	}
	return true
}
