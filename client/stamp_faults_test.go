package client

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/proxy"
)

// slowAnswer is the real proxy whose first Write answers `delay` after
// it was written (stamped): a slow intent append / store write.
type slowAnswer struct {
	api.Writer
	delay time.Duration
	n     int
}

// ClockPeek tells the proxy's clock: the service's answers carry it.
func (s *slowAnswer) ClockPeek() uint64 { return s.Writer.(api.Clock).ClockPeek() }

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
