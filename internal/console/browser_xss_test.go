package console_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"connectrpc.com/connect"
	"github.com/chromedp/chromedp"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// hostile are keys, values and error texts a writer (or a failing store)
// controls, each trying to run script or add elements if a page rendered
// it as HTML: every one sets window.__pwned or leaves an element the
// pages never make (img, svg, iframe, a, script beyond app.js).
var hostile = []string{
	`<img src=x onerror="window.__pwned='img'">`,
	`</td></tr><svg onload="window.__pwned='svg'"></svg>`,
	`"><script>window.__pwned='script'</script>`,
	`</script><iframe srcdoc="<script>parent.__pwned='iframe'</script>"></iframe>`,
	`<a href="javascript:window.__pwned='a'">x</a>`,
	"\u202e<img src=x onerror=\"window.__pwned='rlo'\">",
}

// shownKey is how the pages show key k: as text, or 0x-hex when it is not
// UTF-8, has control or format characters or starts with "0x" (its text
// would pass for another key's).
func shownKey(k string) string {
	if utf8.ValidString(k) && !strings.ContainsFunc(k, func(r rune) bool { return unicode.Is(unicode.Cf, r) || (unicode.IsControl(r) && r != '\t') }) &&
		!strings.HasPrefix(strings.ToLower(k), "0x") {
		return k
	}
	return "0x" + hex.EncodeToString([]byte(k))
}

// hostileValue is the JSON value written under key h.
func hostileValue(h string) string { return `{"v":` + strconv.Quote(h) + `}` }

// injected is true when a page rendered any of hostile as markup (or a
// script ran): elements of kinds the console never makes, a CSP
// violation (an inline script or handler the policy stopped), or
// window.__pwned.
const injected = `(window.__pwned !== undefined || (window.__csp || []).length > 0 ||
	document.querySelectorAll('img, svg, iframe, main a:not([href="/metrics"]), script:not([src="app.js"])').length > 0)`

// watchCSP records the page's CSP violations in window.__csp.
const watchCSP = `document.addEventListener('securitypolicyviolation', e => (window.__csp = window.__csp || []).push(e.violatedDirective)), true`

// TestBrowserEscapes: keys, values and a dead letter's error holding HTML
// and script show as text in the event tail, a key's row and history and
// the dead letters, and nothing of them runs or becomes an element.
func TestBrowserEscapes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, url := servertest.StartServer(t, func(c *config.Config) {
		c.Tables = []config.Table{{Name: "t", Partitions: 2}}
	})
	b := newBrowser(ctx, t)
	clean := func(where string) {
		t.Helper()
		if eval[bool](b, injected) {
			html := eval[string](b, `document.querySelector('main').outerHTML`)
			t.Fatalf("%s: hostile text became markup or ran (pwned %v, csp %v):\n%s", where,
				eval[any](b, `window.__pwned ?? null`), eval[any](b, `window.__csp ?? null`), html)
		}
	}

	// The tail, open before the writes.
	b.do(chromedp.Navigate(url + "/console/#tail"))
	b.waitJS("the table select filled", `document.querySelector('#tail-table option[value="t"]') !== null`)
	eval[bool](b, watchCSP)
	b.do(chromedp.Click(`#tail-form button[type="submit"]`))
	b.waitJS("the tail following", `document.querySelector('#tail-state').textContent.startsWith('following')`)
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	var muts []*wailv1.Mutation
	for _, h := range hostile {
		muts = append(muts, &wailv1.Mutation{Table: "t", Key: []byte(h), Value: []byte(hostileValue(h))})
	}
	if _, err := pc.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: muts})); err != nil {
		t.Fatal(err)
	}
	b.waitJS("every hostile key in the tail", `document.querySelectorAll('#tail-list tbody tr').length >= `+strconv.Itoa(len(hostile)))
	for _, h := range hostile {
		q := strconv.Quote(h)
		if !eval[bool](b, `[...document.querySelectorAll('#tail-list tbody tr')].some(r => r.cells[2].textContent === `+strconv.Quote(shownKey(h))+
			` && r.cells[7].textContent === `+strconv.Quote(hostileValue(h))+`)`) {
			t.Errorf("the tail does not show key %s and its value as text", q)
		}
	}
	clean("the tail")
	b.shot("xss-tail")

	// A key's row and its events.
	for _, h := range hostile {
		b.do(chromedp.Navigate(url + "/console/#key"))
		b.waitJS("the table select filled", `document.querySelector('#key-table option[value="t"]') !== null`)
		eval[bool](b, watchCSP)
		b.do(chromedp.SetValue("#key-key", h), chromedp.Click(`#key-form button[type="submit"]`))
		b.waitJS("the row of "+strconv.Quote(h), `document.querySelector('#key-row').textContent.endsWith(`+strconv.Quote(hostileValue(h))+`)`)
		b.waitJS("its event", `[...document.querySelectorAll('#key-events tbody tr')].some(r => r.cells[5].textContent === `+strconv.Quote(hostileValue(h))+`)`)
		clean("the key " + strconv.Quote(h))
	}
	b.shot("xss-key")

	// A key shown as 0x-hex: the key's page shows its new events as they
	// come (it followed the tail with the key's text, which the tail's
	// filter, matching keys as shown, never met).
	for _, k := range []string{"0x6bff", "user-4\u200b2"} {
		b.do(chromedp.Navigate(url + "/console/#key"))
		b.waitJS("the table select filled", `document.querySelector('#key-table option[value="t"]') !== null`)
		b.do(chromedp.SetValue("#key-key", k), chromedp.Click(`#key-form button[type="submit"]`))
		b.waitJS("the history of "+strconv.Quote(k), `document.querySelector('#key-scope').textContent.startsWith('(partition')`)
		live := false
		for i := 0; i < 100 && !live; i++ { // until the page's tail has started
			v := fmt.Sprintf(`{"live":%d}`, i)
			if _, err := pc.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{{Table: "t", Key: []byte(k), Value: []byte(v)}}})); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			live = eval[bool](b, `[...document.querySelectorAll('#key-events tbody tr')].some(r => r.cells[5].textContent.startsWith('{"live":'))`)
		}
		if !live {
			t.Errorf("the page of key %s (shown as %s) shows none of its new events", strconv.Quote(k), shownKey(k))
		}
	}

	// Dead letters: the key and the error text.
	stored := servertest.Lose(t, srv, "t", "lost", `{}`, false)
	var letters []*wailv1.DeadLetter
	keys := append(hostile, "k\xff\xfe", "\ufeffk", "k\x7f", "0x6bff") // not UTF-8, a byte order mark, DEL, text like hex: shown as hex
	for _, h := range keys {
		l := letter(h, stored)
		if utf8.ValidString(h) {
			l.Error = h
		}
		letters = append(letters, l)
	}
	servertest.DeadLetters(t, srv, "t", letters...)
	b.do(chromedp.Navigate(url + "/console/#dlq"))
	b.waitJS("the table select filled", `document.querySelector('#dlq-table option[value="t"]') !== null`)
	eval[bool](b, watchCSP)
	b.do(chromedp.Click(`#dlq-form button[type="submit"]`))
	b.waitJS("the dead letters listed", `document.querySelectorAll('#dlq-list tbody tr').length === `+strconv.Itoa(len(keys)))
	for _, h := range keys {
		k := strconv.Quote(shownKey(h))
		if !eval[bool](b, `[...document.querySelectorAll('#dlq-list tbody tr')].some(r => r.cells[2].textContent === `+k+`)`) {
			t.Errorf("the dead letters do not show key %s as %s: %v", strconv.Quote(h), k,
				eval[[]string](b, `[...document.querySelectorAll('#dlq-list tbody tr')].map(r => r.cells[2].textContent)`))
		}
		if !utf8.ValidString(h) {
			continue // not an error text the API sends
		}
		if q := strconv.Quote(h); !eval[bool](b, `[...document.querySelectorAll('#dlq-list tbody tr')].some(r => r.cells[5].textContent === `+q+`)`) {
			t.Errorf("the dead letters do not show error %s as text", q)
		}
	}
	clean("the dead letters")
	b.shot("xss-dlq")
}
