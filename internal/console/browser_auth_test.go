package console_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
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

// TestBrowserSignOutForgets: what a principal saw stays with it. After an
// admin looked at a key of table u (its row and its events) and signed
// out, a read-only token (read:t) signed in to the same tab sees none of
// it, neither what was shown before signing out nor what an answer to the
// admin's requests, arriving after, would show (the pages kept the rows
// of the one signed out, and rendered answers late; the next principal
// saw another table's values and events its grants do not allow).
func TestBrowserSignOutForgets(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tokensFile := filepath.Join(t.TempDir(), "tokens.json")
	tf := &auth.TokenFile{}
	tokens := map[string]string{}
	for name, grants := range map[string][]string{"ops": {"*:*"}, "reader": {"read:t"}} {
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
	_, url := servertest.StartServer(t, func(c *config.Config) {
		c.Tables = []config.Table{{Name: "t", Partitions: 2}, {Name: "u", Partitions: 2}}
		c.Security.Auth = config.Auth{Enabled: true, TokensFile: tokensFile}
	})
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	req := connect.NewRequest(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{
		{Table: "u", Key: []byte("payroll"), Value: []byte(`{"salary":"secret"}`)}}})
	req.Header().Set("Authorization", "Bearer "+tokens["ops"])
	if _, err := pc.Write(ctx, req); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(ctx, t)
	signIn := func(token, who string) {
		t.Helper()
		b.waitJS("the login form", `document.body.classList.contains('signed-out') && document.querySelector('#login-token') !== null`)
		b.do(chromedp.SetValue("#login-token", token), chromedp.Click(`#login-form button[type="submit"]`))
		b.waitJS("signed in as "+who, `document.querySelector('#who-name').textContent.startsWith('token:`+who+`')`)
	}
	showKey := func() {
		t.Helper()
		b.waitJS("table u in the select", `document.querySelector('#key-table option[value="u"]') !== null`)
		b.do(chromedp.SetValue("#key-table", "u"), chromedp.SetValue("#key-key", "payroll"), chromedp.Click(`#key-form button[type="submit"]`))
	}
	const seen = `document.querySelector('main').textContent.includes('secret') || document.querySelector('#key-key').value !== ''`
	b.do(chromedp.Navigate(url + "/console/#key"))

	// Shown, then signed out.
	signIn(tokens["ops"], "ops")
	showKey()
	b.waitJS("the admin sees the row and its event", `document.querySelector('#key-row').textContent.includes('secret') && `+
		`document.querySelectorAll('#key-events tbody tr').length === 1`)
	b.do(chromedp.Click("#logout"))
	signIn(tokens["reader"], "reader")
	b.waitJS("the key page shown to the reader", `document.querySelector('#page-key').classList.contains('active')`)
	if eval[bool](b, seen) {
		b.shot("signout-reader-key")
		t.Errorf("the reader sees what the admin saw: row %q, %d events", eval[string](b, `document.querySelector('#key-row').textContent`),
			eval[int](b, `document.querySelectorAll('#key-events tbody tr').length`))
	}

	// Asked, signed out, then answered: the history's answer is held
	// until the reader has signed in.
	b.do(chromedp.Click("#logout"))
	signIn(tokens["ops"], "ops")
	eval[bool](b, `(() => { const f = window.fetch; window.__hold = new Promise(r => window.__release = r);
		window.fetch = async (...a) => { const r = await f(...a); if (String(a[0]).startsWith('api/history')) { window.__held = true; await window.__hold; } return r; };
		return true; })()`)
	showKey()
	b.waitJS("the history's answer held", `window.__held === true`)
	b.do(chromedp.Click("#logout"))
	signIn(tokens["reader"], "reader")
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`window.__release && window.__release(), new Promise(r => setTimeout(() => r(true), 1000))`,
		func(p *runtime.EvaluateParams) { p.AwaitPromise = new(true) })); err != nil {
		t.Fatal(err)
	}
	if eval[bool](b, seen) {
		b.shot("signout-reader-late")
		t.Errorf("the reader sees the answer to the admin's request: row %q, %d events", eval[string](b, `document.querySelector('#key-row').textContent`),
			eval[int](b, `document.querySelectorAll('#key-events tbody tr').length`))
	}

	// A token refused while signed in (revoked since) signs out, saying
	// why.
	eval[bool](b, `sessionStorage.setItem('wail-token', 'wail_0123456789abcdef_`+strings.Repeat("A", 43)+`'), true`)
	b.do(chromedp.Navigate(url + "/console/#tables"))
	b.waitJS("signed out, saying why", `document.body.classList.contains('signed-out') && `+
		`document.querySelector('#login-error').textContent === 'Signed out, the token was refused: unknown bearer token (`+"`wail token ls` lists the tokens; `wail token create` makes one)'"+``)
	if eval[bool](b, `sessionStorage.getItem('wail-token') !== null || document.querySelector('main').textContent.includes('secret')`) {
		t.Error("the refused token is kept, or what the reader saw")
	}
}
