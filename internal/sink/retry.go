package sink

import (
	"net/http"
	"strconv"
	"time"
)

// verdict is what one attempt of a batch means.
type verdict int

const (
	// accepted: a 2xx answer; the batch is delivered.
	accepted verdict = iota
	// retry: try again after a backoff (5xx, 408, 429, a timeout, a
	// connection error, a redirect not followed, 401/403/404: the
	// endpoint, not the batch, is wrong, and an operator can fix it).
	retry
	// refused: the endpoint refused this batch (400, 413, 415, 422; a 413 of several
	// events is split first: runner.post):
	// sending it again cannot help; it is dead-lettered at once.
	refused
)

// judge classifies an attempt by its answer's status (0: no answer: a
// timeout, a connection error, a body cut).
func judge(status int) verdict {
	switch {
	case status == 0:
		return retry
	case status >= 200 && status < 300:
		return accepted
	}
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return refused
	}
	return retry
}

// policy bounds the attempts of one batch.
type policy struct {
	maxAttempts            int // 0: no bound
	maxRetry               time.Duration
	backoffMin, backoffMax time.Duration
}

// backoff is the delay after the n-th failed attempt (n >= 1): min
// doubling up to max, then a random part of it dropped (jitter in [d/2,
// d], rnd in [0, 1)), and never below what the endpoint asked for
// (Retry-After), capped at max.
func (p policy) backoff(n int, rnd float64, retryAfter time.Duration) time.Duration {
	d := p.backoffMin
	for i := 1; i < n && d < p.backoffMax; i++ {
		d *= 2
	}
	d = min(d, p.backoffMax)
	d -= time.Duration(rnd * float64(d/2))
	return max(d, min(retryAfter, p.backoffMax))
}

// giveUp says whether a batch is set aside after n failed attempts, the
// first elapsed ago, when the next would start after wait.
func (p policy) giveUp(n int, elapsed, wait time.Duration) bool {
	return (p.maxAttempts > 0 && n >= p.maxAttempts) || elapsed+wait > p.maxRetry
}

// retryAfter reads a Retry-After header in seconds (an HTTP date is not
// honoured; 0: none).
func retryAfter(h http.Header) time.Duration {
	s, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || s <= 0 {
		return 0
	}
	return time.Duration(min(s, 3600)) * time.Second
}
