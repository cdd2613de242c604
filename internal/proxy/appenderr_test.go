package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestAppendErrorSaysItsCause: a transactional write whose intent the log
// refused says why, with the sentinel the API maps to its code. Every
// failure spoke of the visibility window ("did not take the intent within
// half the visibility window"), as Unavailable, even a record too large for
// the topic, a topic deleted behind wail's back, wail's Kafka principal
// lacking an ACL (none of which a retry changes), or the client's own
// deadline.
func TestAppendErrorSaysItsCause(t *testing.T) {
	t.Parallel()
	kafkaErr := func(sentinel error, code string) error {
		return fmt.Errorf("kafka: append wail.intents.tx: %w: %s", sentinel, code)
	}
	for _, tc := range []struct {
		name   string
		logErr error
		block  bool          // the log does not answer
		client time.Duration // the client's deadline, 0: none
		cancel time.Duration // the client cancels after this, 0: never
		// endInHold: the client's context ends once the append returned
		// (canceled, or its deadline waited for, in hold's done): the
		// append was not cut off, its own error is the cause
		endInHold bool
		sentinel  error // proxy sentinel (or context error) in the chain
		cause     error // kept in the chain
		says      string
	}{
		{name: "too large", logErr: kafkaErr(intentlog.ErrTooLarge, "MESSAGE_TOO_LARGE"),
			sentinel: ErrLogRefused, cause: intentlog.ErrTooLarge, says: "max.message.bytes"},
		{name: "unknown topic", logErr: kafkaErr(intentlog.ErrUnknownTopic, "UNKNOWN_TOPIC_OR_PARTITION"),
			sentinel: ErrLogRefused, cause: intentlog.ErrUnknownTopic, says: "wail doctor"},
		{name: "access denied", logErr: kafkaErr(intentlog.ErrAccessDenied, "TOPIC_AUTHORIZATION_FAILED"),
			sentinel: ErrLogRefused, cause: intentlog.ErrAccessDenied, says: "grant"},
		{name: "closed", logErr: fmt.Errorf("kafka: append: %w", intentlog.ErrClosed),
			sentinel: ErrUnavailable, cause: intentlog.ErrClosed, says: "stopping"},
		{name: "failed", logErr: errors.New("log down"),
			sentinel: ErrUnavailable, says: "the intent log failed: log down"},
		{name: "client deadline", block: true, client: 100 * time.Millisecond,
			sentinel: context.DeadlineExceeded, says: "the request's deadline"},
		{name: "client canceled", block: true, cancel: 100 * time.Millisecond,
			sentinel: context.Canceled, says: "the request was canceled"},
		{name: "failed, then canceled", logErr: errors.New("log down"), endInHold: true,
			sentinel: ErrUnavailable, says: "the intent log failed: log down"},
		{name: "failed, then the deadline", logErr: errors.New("log down"), client: 100 * time.Millisecond, endInHold: true,
			sentinel: ErrUnavailable, says: "the intent log failed: log down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &world{LogFails: tc.logErr != nil, LogErr: tc.logErr, LogBlock: tc.block}
			p := newWindowProxy(t, w, 10*time.Second)
			ctx := context.Background()
			if tc.client > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.client)
				defer cancel()
			}
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			if tc.cancel > 0 {
				time.AfterFunc(tc.cancel, cancel)
			}
			if tc.endInHold {
				p.WithHold(func() (func(), error) {
					return func() {
						if tc.client > 0 {
							<-ctx.Done()
						} else {
							cancel()
						}
					}, nil
				})
			}
			r := p.Write(ctx, []Mutation{{Table: "tx", Key: []byte("k"), Value: []byte("v")}})[0]
			if r.Err == nil || r.Stored || r.IntentLogged {
				t.Fatalf("result %+v, want a refused write", r)
			}
			msg := r.Err.Error()
			if !errors.Is(r.Err, tc.sentinel) || (tc.cause != nil && !errors.Is(r.Err, tc.cause)) ||
				!strings.Contains(msg, tc.says) || strings.Contains(msg, "visibility window") ||
				!strings.Contains(msg, "nothing was written") {
				t.Fatalf("err = %v; want %v (cause %v) saying %q and that nothing was written, not the visibility window",
					r.Err, tc.sentinel, tc.cause, tc.says)
			}
			if w.Row("k").Version != 0 {
				t.Fatal("the store was written")
			}
		})
	}
}
