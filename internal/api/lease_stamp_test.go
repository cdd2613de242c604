package api

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/proxy/proxytest"
)

// TestLeaseGatesStamping: writes are refused before stamping while the
// proxy id's lease is not valid (DESIGN.md, "Proxy ids are leased"), so
// that the old holder stops stamping TTL/5 (3 s by default) before
// another process may claim the id. A write admitted when it arrived that
// waits in the table's merge queue (up to proxy.MaxStampDelay, 5 s) is
// asked again right before it is stamped, as the server wires it. (It was
// checked only on arrival: stamped, logged and stored after the lease
// lapsed.)
func TestLeaseGatesStamping(t *testing.T) {
	w := &world{}
	p := worldProxy(t, w, proxytest.TxAndInd(10*time.Second),
		proxy.Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10, WritesInFlight: 1})
	var lapsed atomic.Bool
	admit := func() error {
		if lapsed.Load() {
			return errors.New("the lease of proxy id 3 lapsed")
		}
		return nil
	}
	svc := NewProducerService(p.WithAdmit(admit)).WithAdmit(admit)
	inApply, gate := make(chan struct{}, 10), make(chan struct{})
	var first atomic.Bool
	w.OnApply = func() {
		if first.CompareAndSwap(false, true) {
			inApply <- struct{}{}
			<-gate // a slow store write (W is 10 s)
		}
	}
	ctx := context.Background()
	put := func(key string) error {
		_, err := svc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "tx", Key: []byte(key), Value: []byte("v")}))
		return err
	}
	done1 := make(chan error, 1)
	go func() { done1 <- put("a") }()
	<-inApply // the first batch is in its store write: the next write queues
	done2 := make(chan error, 1)
	go func() { done2 <- put("b") }()  // admitted: the lease is valid now
	time.Sleep(300 * time.Millisecond) // it waits in the merge queue
	lapsed.Store(true)                 // the lease lapses (renewals failed)
	close(gate)
	if err := <-done1; err != nil {
		t.Fatal(err)
	}
	err := <-done2
	w.Mu.Lock()
	var bVersion uint64
	for _, in := range w.Intents {
		if string(in.Key) == "b" {
			bVersion = in.Version
		}
	}
	row := w.Rows["b"]
	w.Mu.Unlock()
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Errorf("the write refused before stamping: %v, want unavailable", err)
	}
	if bVersion != 0 {
		t.Fatalf("a write admitted before the lease lapsed was stamped (version %d), logged and stored (row version %d, err %v) after it lapsed: "+
			"writes must be refused before stamping while the lease is not valid", bVersion, row.Version, err)
	}
}
