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
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewProducerServiceHandler(api.NewProducerService(&slowAnswer{Writer: px, delay: 800 * time.Millisecond})))
	srv := startH2C(t, mux)
	hc, err := Options{Addr: srv.Listener.Addr().String(), H2C: true}.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	const fence = 600 * time.Millisecond // stampWindow 500 ms
	p := newProducer(wailv1connect.NewProducerServiceClient(hc, srv.URL),
		ProducerConfig{BatchSize: 1, Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond, DeliveryTimeout: 3 * time.Second}, fence)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.Close(ctx)
	}()
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
				for {
					n, err := c.Read(buf)
					if n > 0 {
						time.Sleep(time.Duration(n) * time.Second / time.Duration(rate))
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

// runSlowLink writes 64 values of 60 KiB through a producer on a
// slowLink, with the given fence, and counts the writes that failed.
func runSlowLink(t *testing.T, fence time.Duration) (ok, failed int64, lastErr atomic.Value) {
	w := &proxytest.World{Rows: map[string]store.Row{}}
	clock, _ := hlc.New(3, nil)
	tbs := proxytest.Tables{"tx": {Name: "tx", FailureMode: catalog.Transactional, Partitions: 1, VisibilityWindow: time.Minute}}
	px := proxy.New(w.Log(), w.Store(), tbs, clock, proxy.Limits{MaxKeyBytes: 64, MaxValueBytes: 1 << 20, MaxBatch: 100}, nil)
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewProducerServiceHandler(api.NewProducerService(px)))
	srv := startH2C(t, mux)
	addr := slowLink(t, srv.Listener.Addr().String(), 1<<20) // 1 MiB/s
	hc, _ := Options{Addr: addr, H2C: true}.HTTPClient()
	p := newProducer(wailv1connect.NewProducerServiceClient(hc, "http://"+addr),
		ProducerConfig{BatchSize: 4, MaxBatchBytes: 300 << 10, Linger: time.Millisecond, DeliveryTimeout: 8 * time.Second}, fence)
	defer p.Close(context.Background())
	var wg sync.WaitGroup
	val := make([]byte, 60<<10)
	for i := range 64 { // 3.75 MiB: under 4 s of the link
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
	ok, failed, last := runSlowLink(t, 600*time.Millisecond)
	if failed > 0 {
		t.Fatalf("%d of %d writes failed on a slow link that carries them all within the delivery timeout; the last: %v", failed, ok+failed, last.Load())
	}
}
