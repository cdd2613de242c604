package api

import (
	"strings"
	"testing"

	"connectrpc.com/connect"
)

// TestSlots counts streams per client and in total.
func TestSlots(t *testing.T) {
	t.Parallel()
	var refused []string
	var open int
	s := newSlots(eventStreams, SlotLimits{MaxStreams: 3, MaxStreamsPerClient: 2,
		Refused: func(l string) { refused = append(refused, l) }, Opened: func(n int) { open = n }})
	r1, err := s.take("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.take("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.take("a"); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("third stream of a: %v", err)
	}
	if _, err := s.take("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.take("c"); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("fourth stream: %v", err)
	}
	r1()
	r1() // releasing twice frees one slot
	if open != 2 || s.Open() != 2 {
		t.Fatalf("open %d/%d, want 2", open, s.Open())
	}
	// a has one stream left: one more, not two.
	r2, err := s.take("a")
	if err != nil {
		t.Fatalf("a's second stream after one closed: %v", err)
	}
	r2()
	if _, err := s.take("c"); err != nil {
		t.Fatal(err)
	}
	if len(refused) != 2 || refused[0] != "per_client" || refused[1] != "total" {
		t.Fatalf("refused %v", refused)
	}
	s.limits.MaxStreams = 0 // only the per-client limit
	if _, err := s.take("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.take("a"); connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "a has 2 event streams open, the most one client address may (api.max_subscriptions_per_client)") {
		t.Fatalf("a's third stream: %v", err)
	}
	if hostOf("10.0.0.1:5000") != "10.0.0.1" || hostOf("[::1]:80") != "::1" {
		t.Fatal("hostOf")
	}
}
