package api

import (
	"fmt"
	"net"
	"sync"

	"connectrpc.com/connect"
)

// SlotLimits bound the streams of one kind (write streams, event
// streams) open at once. Zero values: no bound.
type SlotLimits struct {
	// MaxStreams is the most streams open at once; MaxStreamsPerClient
	// the most from one client address (the host of the remote address:
	// behind a proxy, the proxy's).
	MaxStreams, MaxStreamsPerClient int
	// Refused, if set, is called with "total" or "per_client" when a
	// stream is refused; Opened with the number open when it changes.
	Refused func(limit string)
	Opened  func(open int)
}

// slotKind words the refusals of one kind of stream.
type slotKind struct {
	what             string // "write streams"
	total, perClient string // the config keys of the limits
	hint             string // what a client over its own limit can do
}

// streamSlots counts the open streams of one kind and refuses those over
// a limit (ResourceExhausted, naming the config key, with a RetryInfo
// detail: a slot frees when a stream ends).
type streamSlots struct {
	kind     slotKind
	limits   SlotLimits
	mu       sync.Mutex
	open     int
	byClient map[string]int
}

func newSlots(kind slotKind, l SlotLimits) *streamSlots {
	return &streamSlots{kind: kind, limits: l, byClient: map[string]int{}}
}

// take takes a slot for client, or says which limit is reached.
func (t *streamSlots) take(client string) (release func(), err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, k := t.limits, t.kind
	switch {
	case l.MaxStreams > 0 && t.open >= l.MaxStreams:
		t.refused("total")
		return nil, retryLater(connect.NewError(connect.CodeResourceExhausted, fmt.Errorf(
			"%d %s are open, the most this server takes (%s); retry later", t.open, k.what, k.total)), SlotRetryDelay)
	case l.MaxStreamsPerClient > 0 && t.byClient[client] >= l.MaxStreamsPerClient:
		t.refused("per_client")
		return nil, retryLater(connect.NewError(connect.CodeResourceExhausted, fmt.Errorf(
			"%s has %d %s open, the most one client address may (%s); %s", client, t.byClient[client], k.what, k.perClient, k.hint)), SlotRetryDelay)
	}
	t.open++
	t.byClient[client]++
	t.opened()
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.open--
			if t.byClient[client]--; t.byClient[client] == 0 {
				delete(t.byClient, client)
			}
			t.opened()
		})
	}, nil
}

// Open returns how many streams are open.
func (t *streamSlots) Open() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.open
}

func (t *streamSlots) opened() {
	if t.limits.Opened != nil {
		t.limits.Opened(t.open)
	}
}

func (t *streamSlots) refused(limit string) {
	if t.limits.Refused != nil {
		t.limits.Refused(limit)
	}
}

// hostOf is the host of a peer address.
func hostOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
