package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a config: the dotted key and what to do.
type Problem struct {
	Key     string
	Message string

	// unread marks a value that could not be read at all (a ${VAR} that is
	// not set, a value the decoder could not make into the key's type):
	// whatever else is wrong with it follows from that.
	unread bool
	// meant is, for an unknown key, the known key it is likely a
	// misspelling of (see required); under is the section beside the
	// unknown key that meant is in, "" if meant is beside it too.
	meant, under string
	// env is the AUTHPROXY_ variable that set the value, if one did: the
	// file says otherwise, and the reader must be told where to look.
	env string
	// wanted are, for a required key that is not set, the keys any of
	// which would do (see emptiedBy).
	wanted []string
}

// Problems is every problem found in one config; as an error it lists
// them all, one a line.
type Problems []Problem

func (p Problems) Error() string {
	var b strings.Builder
	if len(p) == 1 {
		b.WriteString("1 problem:")
	} else {
		fmt.Fprintf(&b, "%d problems:", len(p))
	}
	for _, pr := range p {
		b.WriteString("\n  ")
		if pr.Key != "" {
			b.WriteString(pr.Key)
			if pr.env != "" {
				fmt.Fprintf(&b, " (from %s)", pr.env)
			}
			b.WriteString(": ")
		}
		b.WriteString(pr.Message)
	}
	return b.String()
}

// add records a problem with key, unless key's value, or a value it is
// part of, could not be read: its "required" or "not a URL" would only
// repeat that, and a newcomer with no variables set would read every
// problem twice.
func (p *Problems) add(key, format string, args ...any) {
	if p.unreadAt(key) {
		return
	}
	*p = append(*p, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

// unread records that key's value could not be read, and why; the first
// reason found is the one reported.
func (p *Problems) unread(key string, err error) {
	if p.unreadAt(key) {
		return
	}
	*p = append(*p, Problem{Key: key, Message: err.Error(), unread: true})
}

// misspelt records key as unknown, and likely meant: the known key beside
// it that is nearest, or one in the section beside it named under.
func (p *Problems) misspelt(key, meant, under string) {
	if p.unreadAt(key) {
		return
	}
	q := Problem{Key: key, meant: meant, under: under}
	q.Message = q.unknown(meantOptional)
	*p = append(*p, q)
}

// unknown is the message of q, an unknown key that is likely q.meant,
// which may be required (see required) or hold required keys.
func (q Problem) unknown(why meantWhy) string {
	name := lastPart(q.meant)
	if q.under != "" && name == lastPart(q.Key) {
		return "unknown key here; move it under " + q.under + ":" + [...]string{"", " (where it is required and not set)", " (where its required keys are not set)"}[why]
	}
	where := ""
	if q.under != "" {
		where = " under " + q.under + ":"
	}
	return "unknown key; did you mean " + strconv.Quote(name) + where + [...]string{"", ", which is required and not set", ", whose required keys are not set"}[why] + "?"
}

// meantWhy is what an unknown key's message says of the key meant.
type meantWhy int

const (
	meantOptional meantWhy = iota
	meantRequired
	meantHoldsRequired
)

// required records that key must be set and is not; alts are keys that
// would do instead (client_secret_file for client_secret). A user who
// misspelt the key wrote it all the same: when an unknown key is the
// likely misspelling of key, of an alt, or of the section that holds key,
// its line says so, and key's "required" would only be the same mistake
// said twice.
func (p *Problems) required(key string, alts []string, format string, args ...any) {
	if p.unreadAt(key) {
		return
	}
	said, keys := false, append([]string{key}, alts...)
	for i, q := range *p {
		for _, k := range keys {
			switch {
			case q.meant == "":
			case q.meant == k:
				(*p)[i].Message = q.unknown(meantRequired)
				said = true
			case strings.HasPrefix(k, q.meant+"."):
				(*p)[i].Message = q.unknown(meantHoldsRequired)
				said = true
			}
		}
	}
	if !said && !p.unreadAt(key) {
		*p = append(*p, Problem{Key: key, Message: fmt.Sprintf(format, args...), wanted: keys})
	}
}

// emptiedBy rewrites the problem of each required key that is not set
// because a variable set to "" left it, or a key that would do instead,
// empty: the file has its ${VAR}, and "required; write ${ENV_VAR}"
// would send the reader to look there. emptied maps each key a set but
// empty variable left empty to the variable.
func (p Problems) emptiedBy(emptied map[string]string) {
	for i, q := range p {
		for _, k := range q.wanted {
			if name, ok := emptied[strings.ToLower(k)]; ok {
				p[i].Message = fmt.Sprintf("environment variable %s is set but empty; set it (export %s=...), or write the value in place of ${%s}", name, name, name)
				break
			}
		}
	}
}

// lastPart is the last part of a dotted key: the name written in the
// file, beside the others of its section.
func lastPart(key string) string { return key[strings.LastIndexByte(key, '.')+1:] }

// unreadAt reports whether key's value, or one that holds it (a section
// written as a number), could not be read.
func (p Problems) unreadAt(key string) bool {
	for _, q := range p {
		if q.unread && (q.Key == key || strings.HasPrefix(key, q.Key+".") || strings.HasPrefix(key, q.Key+"[")) {
			return true
		}
	}
	return false
}

// checked adds the problems found by Options.CheckUpstream, except in a
// section (upstreams.NAME.token, upstreams.NAME.tls) where config found a
// problem already, or that could not be read: a value there may be a
// default left in place of a bad one, and what the check says of it would
// repeat config's problem or follow from it.
func (p *Problems) checked(found Problems) {
	mine := len(*p)
	for _, f := range found {
		section := f.Key
		if parts := strings.SplitN(f.Key, ".", 4); len(parts) > 3 {
			section = strings.Join(parts[:3], ".")
		}
		if !(*p)[:mine].in(section) && !p.unreadAt(f.Key) {
			*p = append(*p, Problem{Key: f.Key, Message: f.Message})
		}
	}
}

// in reports whether a problem is at key or at a key it holds.
func (p Problems) in(key string) bool {
	for _, q := range p {
		if q.Key == key || strings.HasPrefix(q.Key, key+".") || strings.HasPrefix(q.Key, key+"[") {
			return true
		}
	}
	return false
}

// Report returns p, problems found in c (by Load, or after it, when the
// proxy is built), as Load reports them: sorted by key, so that the
// report reads the same on every run and a key's problems stand
// together, and each naming the AUTHPROXY_ variable its value came from,
// if one did. nil if there are none.
func (c *Config) Report(p Problems) error {
	if len(p) == 0 {
		return nil
	}
	for i := range p {
		p[i].env = envOf(c.fromEnv, p[i].Key)
	}
	sort.SliceStable(p, func(i, j int) bool { return p[i].Key < p[j].Key })
	return p
}

// envOf is the variable in fromEnv that set key, or the value that holds
// it (a list's item, a map's entry); "" if none did. viper's keys are in
// lower case; a param's name keeps its case (see keepParamCase).
func envOf(fromEnv map[string]string, key string) string {
	key = strings.ToLower(key)
	for {
		if name, ok := fromEnv[key]; ok {
			return name
		}
		// A secret and its _file are one setting written two ways: a
		// problem is named by one, and the variable may have set the other.
		other := key + "_file"
		if base, ok := strings.CutSuffix(key, "_file"); ok {
			other = base
		}
		if name, ok := fromEnv[other]; ok {
			return name
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			return ""
		}
		key = key[:i]
	}
}
