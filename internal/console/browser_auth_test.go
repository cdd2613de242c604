package console_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// TestBrowserAuth drives the console of a server with auth on: it asks
// for a token; a wrong one is refused with a message saying why; a
// read-only token (read:t) sees table t but no live charts and no dead
// letters (the pages say what they need, no Redrive button shows, and the
// server refuses a redrive sent with that token); after signing out, an
// admin token redrives a dead letter by clicking Redrive and its event
// shows. The token stays in the tab's sessionStorage; no cookie is set.
func TestBrowserAuth(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tokensFile := filepath.Join(t.TempDir(), "tokens.json")
	tf := &auth.TokenFile{}
	tokens := map[string]string{}
	for name, grants := range map[string][]string{"ops": {"admin:*", "metrics"}, "reader": {"read:t"}} {
		gs, err := auth.ParseGrants(grants)
		if err != nil {
			t.Fatal(err)
		}
		if tokens[name], _, err = tf.Create(name, gs, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := tf.Write(tokensFile); err != nil {
		t.Fatal(err)
	}
	srv, url := servertest.StartServer(t, func(c *config.Config) {
		c.Tables = []config.Table{{Name: "t", Partitions: 2}}
		c.Security.Auth = config.Auth{Enabled: true, TokensFile: tokensFile}
	})
	stored := servertest.Lose(t, srv, "t", "lost", `{"lost":true}`, false)
	offs := servertest.DeadLetters(t, srv, "t", letter("lost", stored))

	b := newBrowser(ctx, t)
	signIn := func(token string) {
		t.Helper()
		b.waitJS("the login form", `document.body.classList.contains('signed-out') && document.querySelector('#login-token') !== null`)
		b.do(chromedp.SetValue("#login-token", token), chromedp.Click(`#login-form button[type="submit"]`))
	}
	b.do(chromedp.Navigate(url + "/console/#tables"))
	b.waitJS("asked for a token", `document.querySelector('#login-error').textContent.includes('needs a token')`)
	b.shot("auth-login")

	wrong := "wail_0123456789abcdef_" + strings.Repeat("A", 43)
	signIn(wrong)
	b.waitJS("the wrong token refused, saying why", `document.querySelector('#login-error').textContent.includes('This token was refused: unknown bearer token')`)
	if got := eval[string](b, `sessionStorage.getItem('wail-token') ?? ''`); got != "" {
		t.Errorf("a refused token is kept: %q", got)
	}
	b.shot("auth-wrong-token")

	// Read-only.
	signIn(tokens["reader"])
	b.waitJS("signed in as the reader", `document.querySelector('#who-name').textContent.startsWith('token:reader (read:t)')`)
	b.waitJS("table t listed", `document.querySelector('#tables-list tr[data-table="t"]') !== null`)
	b.waitJS("Live and Dead letters marked as not allowed", `document.querySelector('nav a[data-page="live"]').classList.contains('denied') && `+
		`document.querySelector('nav a[data-page="dlq"]').classList.contains('denied') && !document.querySelector('nav a[data-page="tables"]').classList.contains('denied')`)
	b.do(chromedp.Navigate(url + "/console/#dlq"))
	b.waitJS("the dead letters page says what it needs", `document.querySelector('#page-denied').classList.contains('active') && `+
		`document.querySelector('#denied-message').textContent === 'token:reader may not see this page: it needs admin:*.'`)
	if n := eval[int](b, `document.querySelectorAll('button.redrive').length`); n != 0 {
		t.Errorf("%d redrive buttons shown to a read-only token", n)
	}
	b.shot("auth-reader-dlq")
	// Sent anyway, with the reader's token, the server refuses it.
	refused, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`call("AdminService", "RedriveDeadLetters", {table: "t", offsets: ["`+
		strconv.FormatInt(offs[0], 10)+`"]}).then(() => "redriven", e => e.message)`, func(p *runtime.EvaluateParams) { p.AwaitPromise = new(true) }))
	if err != nil || !strings.Contains(refused, "token:reader lacks the admin permission") {
		t.Errorf("a redrive with the read-only token: %q, %v", refused, err)
	}

	// Sign out; an admin redrives.
	b.do(chromedp.Click("#logout"))
	signIn(tokens["ops"])
	b.waitJS("signed in as ops", `document.querySelector('#who-name').textContent.startsWith('token:ops')`)
	if got := eval[string](b, `sessionStorage.getItem('wail-token')`); got != tokens["ops"] {
		t.Errorf("sessionStorage holds %q, want the ops token", got)
	}
	if c := eval[string](b, `document.cookie`); c != "" {
		t.Errorf("the console set cookies: %q", c)
	}
	b.redrive(url, "lost", offs[0], stored, "auth-admin-dlq")
	b.do(chromedp.Navigate(url + "/console/#live"))
	b.waitJS("the live charts with the metrics grant", `document.querySelector('#page-live').classList.contains('active') && `+
		`document.querySelector('#status').textContent.startsWith('live:')`)
	b.shot("auth-admin-live")
}
