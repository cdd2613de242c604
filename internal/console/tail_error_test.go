package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/console"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// TestTailErrorEventIsJSON: the error event that ends a tail carries its
// message as a JSON string, which the page reads with JSON.parse, whatever
// the message holds (it was Go-quoted: a control character, DEL, a rune
// Go does not print or bytes that are not UTF-8, as a broker's error text
// may hold, came as \x7f, \a, \U000e0001, which JSON.parse refuses: the
// page showed JSON.parse's SyntaxError instead of why the tail ended).
func TestTailErrorEventIsJSON(t *testing.T) {
	t.Parallel()
	for _, msg := range []string{"plain", "del \x7f bell \a vt \v", "tag \U000e0001", "not UTF-8 \xff", `quote " backslash \`} {
		t.Run(msg, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			log, err := embedded.Open(t.TempDir(), embedded.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = log.Close() })
			if err := log.CreateTopic(ctx, eventbus.Topic("t"), 1, intentlog.TopicOptions{}); err != nil {
				t.Fatal(err)
			}
			c := console.New(console.Options{Log: log, Table: func(name string) (catalog.Table, bool) {
				return catalog.Table{Name: "t", Partitions: 1}, name == "t"
			}, Recheck: func(*http.Request) func() error { return func() error { return errors.New(msg) } }})
			srv := httptest.NewServer(c.Handler())
			defer srv.Close()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/console/api/tail?table=t", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			lines := bufio.NewReader(resp.Body)
			for kind := ""; ; {
				line, err := lines.ReadString('\n')
				if err != nil {
					t.Fatalf("the tail ended without an error event: %v", err)
				}
				if k, ok := strings.CutPrefix(line, "event: "); ok {
					kind = strings.TrimSpace(k)
				}
				data, ok := strings.CutPrefix(line, "data: ")
				if !ok || kind != "error" {
					continue
				}
				var got string
				if err := json.Unmarshal([]byte(data), &got); err != nil {
					t.Fatalf("error event data %q is not a JSON string: %v", data, err)
				}
				if want := strings.ToValidUTF8(msg, "\ufffd"); got != want {
					t.Fatalf("error event says %q, want %q", got, want)
				}
				return
			}
		})
	}
}
