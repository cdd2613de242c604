package client

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/proxy/proxytest"
	"github.com/wail-cdc/wail/internal/store"
)

// slowAnswer is the real proxy whose first Write answers `delay` after
// it was written (stamped): a slow intent append / store write.
type slowAnswer struct {
	api.Writer
	delay time.Duration
	n     int
}

func (s *slowAnswer) Write(ctx context.Context, muts []proxy.Mutation) []proxy.Result {
	res := s.Writer.Write(ctx, muts)
	s.n++
	if s.n == 1 {
		time.Sleep(s.delay)
	}
	return res
}

// TestSlowAnswerNoLivelock: an answer that arrived later than the stamp
// window after its batch was stamped (a slow store write) does not leave
// the producer's estimate of the server's clock behind for good: answers
// carry the server's time when sent (server_time), and a refused batch's
// answer corrects the estimate. (With the estimate taken from the
// versions answered, every later batch was refused and the producer never
// wrote again.)
func TestSlowAnswerNoLivelock(t *testing.T) {
	_, px := realProxy(t)
	const fence = 600 * time.Millisecond // stampWindow 500 ms
	p := serveHandler(t, api.NewProducerService(&slowAnswer{Writer: px, delay: 800 * time.Millisecond}),
		ProducerConfig{BatchSize: 1, Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond, DeliveryTimeout: 3 * time.Second}, fence)
	ctx := context.Background()
	if _, err := p.Put(ctx, "tx", []byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	// The store is fast again.
	if _, err := p.Put(ctx, "tx", []byte("b"), []byte("2")); err != nil {
		t.Fatalf("a healthy write after one slow answer: %v", err)
	}
}

// slowLink forwards TCP to addr, client to server at rate bytes/s.
func slowLink(t *testing.T, addr string, rate int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); u.Close() })
			go func() { _, _ = io.Copy(c, u) }()
			go func() {
				buf := make([]byte, 8<<10)
				// Paced on a schedule, not by a sleep per read: a loaded
				// machine oversleeps each (8 KiB, 8 ms at 1 MiB/s) by
				// milliseconds, which halved the link's rate and failed
				// writes at their delivery timeout. Time lost is made up
				// (up to a burst of 100 ms of the rate); time idle is not.
				const burst = 100 * time.Millisecond
				next := time.Now()
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if floor := time.Now().Add(-burst); next.Before(floor) {
							next = floor
						}
						next = next.Add(time.Duration(n) * time.Second / time.Duration(rate))
						time.Sleep(time.Until(next))
						if _, err := u.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// runSlowLink writes n values of size bytes through a producer with the
// given fence, batch size and delivery timeout, on a slowLink of rate
// bytes/s to the real proxy, and counts the writes that failed.
func runSlowLink(t *testing.T, fence time.Duration, rate, n, size, batch int, dt time.Duration) (ok, failed int64, lastErr atomic.Value) {
	w := &proxytest.World{Rows: map[string]store.Row{}}
	clock, _ := hlc.New(3, nil)
	tbs := proxytest.Tables{"tx": {Name: "tx", FailureMode: catalog.Transactional, Partitions: 1, VisibilityWindow: time.Minute}}
	px := proxy.New(w.Log(), w.Store(), tbs, clock, proxy.Limits{MaxKeyBytes: 64, MaxValueBytes: 1 << 20, MaxBatch: 100}, nil)
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewProducerServiceHandler(api.NewProducerService(px)))
	srv := startH2C(t, mux)
	addr := slowLink(t, srv.Listener.Addr().String(), rate)
	hc, _ := Options{Addr: addr, H2C: true}.HTTPClient()
	p := newProducer(wailv1connect.NewProducerServiceClient(hc, "http://"+addr),
		ProducerConfig{BatchSize: batch, MaxBatchBytes: 8 << 20, Linger: time.Millisecond, DeliveryTimeout: dt}, fence)
	defer p.Close(context.Background())
	var wg sync.WaitGroup
	val := make([]byte, size)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Put(context.Background(), "tx", []byte(fmt.Sprint(i)), val); err != nil {
				atomic.AddInt64(&failed, 1)
				lastErr.Store(err.Error())
			} else {
				atomic.AddInt64(&ok, 1)
			}
		}()
	}
	wg.Wait()
	return
}

// TestSlowLinkWidensStampWindow: a bulk producer on a link slower than
// its batches in flight need within the stamp window (1 MiB/s, a 500 ms
// window scaled down from 5 s, 8 batches of 240 KiB): a batch that waits
// behind the bytes of the batches before it reaches the server past its
// stamp_before and is refused; the window then grows to twice the slow
// answers' time, and every write is written. (With the window fixed, 60 of
// the 64 writes failed at their delivery timeout, refused again and again;
// all are written without a bound.)
func TestSlowLinkWidensStampWindow(t *testing.T) {
	t.Parallel()
	ok, failed, last := runSlowLink(t, 600*time.Millisecond, 1<<20, 64, 60<<10, 4, 8*time.Second)
	if failed > 0 {
		t.Fatalf("%d of %d writes failed on a slow link that carries them all within the delivery timeout; the last: %v", failed, ok+failed, last.Load())
	}
}

// TestSlowLinkPastWindowCap: a link on which the bytes of the batches in
// flight take longer than the window's cap (12 times its base: 1 min
// with FenceAfterBreak) to cross (MaxInFlight x MaxBatchBytes / rate: 8 x
// 16 MiB under ~2.2 MB/s with the defaults). With the bound counted from
// when the loop queued a batch behind them, it reached the server past
// its stamp_before and was refused, again and again, until the writes
// failed at their delivery timeout (40 of 64); the stream's sender now
// sets the bound as it sends the batch. Scaled: a
// 240 ms fence (200 ms window, capped at 2.4 s), 8 batches of 960 KiB
// on a 2 MiB/s link (3.75 s in flight; 0.5 s for one batch).
func TestSlowLinkPastWindowCap(t *testing.T) {
	t.Parallel()
	ok, failed, last := runSlowLink(t, 240*time.Millisecond, 2<<20, 64, 240<<10, 4, 20*time.Second)
	if failed > 0 {
		t.Fatalf("%d of %d writes failed on a slow link that carries them all within the delivery timeout; the last: %v", failed, ok+failed, last.Load())
	}
}

// TestSlowStoreKeepsFenceShort: an answer slow for its store write, after
// its stamp (2.5 s: a store, or an intent log, slow for a while), leaves
// the stamp window as it was: the bound covers only the time to the
// stamp. (Grown to twice that, it fenced the keys of a batch lost with its
// stream a while later past the write's 3 s delivery timeout, and the
// write failed, where it was retried after 600 ms before.)
func TestSlowStoreKeepsFenceShort(t *testing.T) {
	t.Parallel()
	r := newLateRig(t, nil)
	p := newProducer(wailv1connect.NewProducerServiceClient(r.hc, "http://"+r.hole.ln.Addr().String()),
		ProducerConfig{BatchSize: 1, Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond, DeliveryTimeout: 3 * time.Second}, 600*time.Millisecond)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.Close(ctx)
	}()
	ctx := context.Background()
	r.ww.slow.Store(int64(2500 * time.Millisecond))
	if _, err := p.Put(ctx, "tx", []byte("first"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	r.ww.slow.Store(0)
	r.hole.hold() // the connection is held, then found dead by its pings
	start := time.Now()
	if _, err := p.Put(ctx, "tx", []byte("k"), []byte("v")); err != nil {
		t.Fatalf("a write lost with a connection found dead within 300 ms, after %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
}
