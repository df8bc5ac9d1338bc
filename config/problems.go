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
	// misspelling of (see resolve); under is the section beside the
	// unknown key that meant is in, "" if meant is beside it too.
	meant, under string
	// env is the AUTHPROXY_ variable that set the value, if one did: the
	// file says otherwise, and the reader must be told where to look.
	env string
	// wanted are, for a required key that is not set, the keys any of
	// which would do (see resolve).
	wanted []string
	// batch numbers, from 1, the calls of Options.CheckUpstream whose
	// problem this is; 0: config's own.
	batch int
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

// The checks record what they find with the methods below, which only
// append: whether a problem is reported, and in what words, when another
// explains it or says it already, is decided once, by resolve
// (resolve.go), when every check has run.

// add records a problem with key.
func (p *Problems) add(key, format string, args ...any) {
	*p = append(*p, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

// unread records that key's value could not be read, and why: whatever
// else is found wrong with it follows from that.
func (p *Problems) unread(key string, err error) {
	*p = append(*p, Problem{Key: key, Message: err.Error(), unread: true})
}

// misspelt records key as unknown, and likely meant: the known key beside
// it that is nearest, or one in the section beside it named under.
func (p *Problems) misspelt(key, meant, under string) {
	q := Problem{Key: key, meant: meant, under: under}
	q.Message = q.unknown(meantOptional)
	*p = append(*p, q)
}

// unknown is the message of q, an unknown key that is likely q.meant,
// which may be required (see resolve) or hold required keys.
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
// would do instead (client_secret_file for client_secret).
func (p *Problems) required(key string, alts []string, format string, args ...any) {
	*p = append(*p, Problem{Key: key, Message: fmt.Sprintf(format, args...), wanted: append([]string{key}, alts...)})
}

// checked records the problems found by Options.CheckUpstream for one
// upstream, as one batch.
func (p *Problems) checked(found Problems) {
	batch := 1
	for _, q := range *p {
		batch = max(batch, q.batch+1)
	}
	for _, f := range found {
		*p = append(*p, Problem{Key: f.Key, Message: f.Message, batch: batch})
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
