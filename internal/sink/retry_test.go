package sink

import (
	"net/http"
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	for _, c := range []struct {
		status int
		want   verdict
	}{
		{200, accepted}, {204, accepted}, {299, accepted},
		{0, retry},                 // no answer
		{199, retry}, {300, retry}, // (300 is no redirect the client follows: answered as is)
		{301, retry}, {307, retry}, {401, retry}, {404, retry},
		{408, retry}, {429, retry}, {500, retry}, {503, retry},
		{400, refused}, {413, refused}, {415, refused}, {422, refused},
	} {
		if got := judge(c.status); got != c.want {
			t.Errorf("judge(%d) = %v, want %v", c.status, got, c.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	p := policy{backoffMin: 100 * time.Millisecond, backoffMax: time.Second, maxRetry: time.Minute}
	for _, c := range []struct {
		n          int
		rnd        float64
		retryAfter time.Duration
		want       time.Duration
	}{
		{1, 0, 0, 100 * time.Millisecond},
		{2, 0, 0, 200 * time.Millisecond},
		{4, 0, 0, 800 * time.Millisecond},
		{5, 0, 0, time.Second}, // capped
		{50, 0, 0, time.Second},
		{1, 0.5, 0, 75 * time.Millisecond},                     // jitter drops at most half
		{1, 0, 700 * time.Millisecond, 700 * time.Millisecond}, // Retry-After
		{1, 0, time.Hour, time.Second},                         // capped at max
	} {
		got := p.backoff(c.n, c.rnd, c.retryAfter)
		if got != c.want {
			t.Errorf("backoff(%d, %v, %v) = %v, want %v", c.n, c.rnd, c.retryAfter, got, c.want)
		}
	}
}

func TestGiveUp(t *testing.T) {
	p := policy{maxAttempts: 3, maxRetry: 10 * time.Second}
	for _, c := range []struct {
		n             int
		elapsed, wait time.Duration
		want          bool
	}{
		{1, 0, time.Second, false},
		{2, 0, time.Second, false},
		{3, 0, time.Second, true},                           // attempts
		{1, 9 * time.Second, time.Second, false},            // exactly the bound
		{1, 9 * time.Second, 1001 * time.Millisecond, true}, // past it
	} {
		if got := p.giveUp(c.n, c.elapsed, c.wait); got != c.want {
			t.Errorf("giveUp(%d, %v, %v) = %v, want %v", c.n, c.elapsed, c.wait, got, c.want)
		}
	}
	p.maxAttempts = 0
	if p.giveUp(1000, 0, time.Second) {
		t.Error("max_attempts 0 bounded the attempts")
	}
}

func TestRetryAfter(t *testing.T) {
	for v, want := range map[string]time.Duration{"": 0, "3": 3 * time.Second, "-1": 0, "x": 0, "99999": time.Hour} {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		if got := retryAfter(h); got != want {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
}
