package sshapp

import (
	"io"
	"sync/atomic"
	"time"
)

// A wizard session passes on at most inputRate bytes of keys a second
// once inputBurst bytes are spent, and drops the rest: a person types a
// few bytes a second and a bracketed paste is cut to maxPaste, but each
// key costs the server some microseconds (decoding, the field's update),
// so a client streaming keys at its line's speed kept a core busy (a
// non-bracketed 1 MB paste: 10 s of CPU). Dropped bytes cost only their
// reading, and nothing waits in memory: slowing the reads instead would
// let SSH buffer up to its 2 MB window per session. Bytes pasteCap drops
// (the rest of an over-long paste) are not counted.
const (
	inputRate  = 1 << 10
	inputBurst = 2 * maxPaste
)

// metered passes r's reads on while they fit a token bucket of
// inputBurst bytes refilled at inputRate; a read that does not fit is
// dropped whole, so that a key's escape sequence is not cut.
type metered struct {
	r       io.Reader
	tokens  float64
	last    time.Time
	now     func() time.Time
	dropped atomic.Int64 // read by the session as it ends
}

func newMetered(r io.Reader) *metered {
	return &metered{r: r, tokens: inputBurst, last: time.Now(), now: time.Now}
}

func (m *metered) Read(b []byte) (int, error) {
	for {
		n, err := m.r.Read(b)
		now := m.now()
		m.tokens = min(inputBurst, m.tokens+now.Sub(m.last).Seconds()*inputRate)
		m.last = now
		if float64(n) <= m.tokens || err != nil {
			m.tokens = max(m.tokens-float64(n), 0)
			return n, err
		}
		m.dropped.Add(int64(n))
	}
}
