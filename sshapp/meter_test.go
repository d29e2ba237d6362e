package sshapp

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// chunked reads its data 1 KB at a time, each read a millisecond later.
type chunked struct {
	data []byte
	now  *time.Time
}

func (c *chunked) Read(b []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	*c.now = c.now.Add(time.Millisecond)
	n := copy(b[:min(len(b), 1024)], c.data)
	c.data = c.data[n:]
	return n, nil
}

// Keys come through up to the burst, then at inputRate: 1 MB sent in one
// second passes on the burst and about a second's rate, the rest is
// dropped; an idle session gets its burst back.
func TestMeteredInput(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	src := &chunked{data: bytes.Repeat([]byte("k"), 1<<20), now: &now}
	m := &metered{r: src, tokens: inputBurst, last: now, now: func() time.Time { return now }}
	got, err := io.ReadAll(m)
	if err != nil {
		t.Fatal(err)
	}
	if min, max := inputBurst, inputBurst+2*inputRate; len(got) < min || len(got) > max {
		t.Errorf("1 MB in a second: %d bytes passed on, want %d to %d", len(got), min, max)
	}
	if m.dropped.Load()+int64(len(got)) != 1<<20 {
		t.Errorf("passed %d + dropped %d != 1 MB", len(got), m.dropped.Load())
	}
	now = now.Add(time.Hour)
	src.data = bytes.Repeat([]byte("k"), inputBurst)
	if got, _ := io.ReadAll(m); len(got) != inputBurst {
		t.Errorf("after an hour idle: %d bytes passed on, want the whole burst (%d)", len(got), inputBurst)
	}
}
