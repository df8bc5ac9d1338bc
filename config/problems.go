package config

import (
	"fmt"
	"sort"
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

// err returns the problems sorted by key, so that the report reads the
// same on every run and a key's problems stand together.
func (p Problems) err() error {
	if len(p) == 0 {
		return nil
	}
	sort.SliceStable(p, func(i, j int) bool { return p[i].Key < p[j].Key })
	return p
}
