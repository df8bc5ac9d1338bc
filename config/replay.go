package config

import "fmt"

const defaultMaxBody = 1 << 20

// Replay says when a request is replayed with a fresh token.
type Replay struct {
	OnStatus []int
	MaxBody  int64
}

type fileReplay struct {
	OnStatus []status `mapstructure:"on_status"` // nil: unset, so [401]
	MaxBody  *size    `mapstructure:"max_body"`
}

// status is an HTTP status, as on_status lists them: a type of its own,
// so that a value that is not a number says what to write (see intValue).
type status int

func (status) wanted() string { return "an HTTP status such as 401" }

// replay checks upstreams.NAME.replay, whose key is rk.
func (p *Problems) replay(rk string, fr fileReplay) Replay {
	r := Replay{OnStatus: []int{401}, MaxBody: fr.MaxBody.or(defaultMaxBody)}
	if fr.OnStatus != nil {
		r.OnStatus = make([]int, len(fr.OnStatus))
		for i, s := range fr.OnStatus {
			r.OnStatus[i] = int(s)
		}
	}
	for i, s := range r.OnStatus {
		if s < 400 || s > 599 {
			p.add(fmt.Sprintf("%s.on_status[%d]", rk, i), "%d is not an error status; write e.g. [401] or [401, 403]", s)
		}
	}
	return r
}
