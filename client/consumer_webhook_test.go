package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func sign(secret string, ts int64, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d.%s", ts, body)
	return hex.EncodeToString(m.Sum(nil))
}

func TestVerifyWebhook(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ts := now.Unix()
	good := fmt.Sprintf("t=%d,v1=%s", ts, sign("s", ts, "body"))
	for _, c := range []struct {
		name, header, body string
		ok                 bool
	}{
		{"good", good, "body", true},
		{"second signature matches (secret rotation)", fmt.Sprintf("t=%d,v1=%s,v1=%s", ts, sign("old", ts, "body"), sign("s", ts, "body")), "body", true},
		{"body changed", good, "bodx", false},
		{"wrong secret", fmt.Sprintf("t=%d,v1=%s", ts, sign("x", ts, "body")), "body", false},
		{"timestamp changed", fmt.Sprintf("t=%d,v1=%s", ts+1, sign("s", ts, "body")), "body", false},
		{"too old (replay)", fmt.Sprintf("t=%d,v1=%s", ts-301, sign("s", ts-301, "body")), "body", false},
		{"from the future", fmt.Sprintf("t=%d,v1=%s", ts+301, sign("s", ts+301, "body")), "body", false},
		{"exactly the tolerance", fmt.Sprintf("t=%d,v1=%s", ts-300, sign("s", ts-300, "body")), "body", true},
		{"no header", "", "body", false},
		{"no timestamp", "v1=" + sign("s", ts, "body"), "body", false},
		{"bad timestamp", "t=x,v1=00", "body", false},
		{"not hex", fmt.Sprintf("t=%d,v1=zz", ts), "body", false},
		{"exactly the tolerance ahead", fmt.Sprintf("t=%d,v1=%s", ts+300, sign("s", ts+300, "body")), "body", true},
		{"spaces after the commas", fmt.Sprintf("t=%d, v1=%s", ts, sign("s", ts, "body")), "body", true},
		{"a second, bad timestamp", good + ",t=x", "body", false},
		{"the signature with more after it", good + "zz", "body", false},
		{"the signature with half a byte more", good + "0", "body", false},
	} {
		err := VerifyWebhook([]byte("s"), c.header, []byte(c.body), now, 5*time.Minute)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrWebhookSignature)) {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// TestVerifyWebhookSaysWhatIsMissing: a header without a timestamp or
// without a signature is refused saying so (the sink's secret not set),
// not as a replay or a wrong secret.
func TestVerifyWebhookSaysWhatIsMissing(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ts := now.Unix()
	for _, header := range []string{"v1=" + sign("s", ts, "body"), fmt.Sprintf("t=%d", ts), fmt.Sprintf("t=-1,v1=%s", sign("s", -1, "body"))} {
		// A tolerance of a century: the missing timestamp is not refused
		// as too old.
		err := VerifyWebhook([]byte("s"), header, []byte("body"), now, 100*365*24*time.Hour)
		if !errors.Is(err, ErrWebhookSignature) || !strings.Contains(err.Error(), "has no t= and v1=") {
			t.Errorf("header %q: %v, want ErrWebhookSignature saying it has no t= and v1=", header, err)
		}
	}
}

// TestQuoted: a refusal quotes a header whole up to maxQuoted bytes; a
// longer one, its first maxQuoted bytes cut back to a character's start,
// and its length.
func TestQuoted(t *testing.T) {
	a64 := strings.Repeat("a", maxQuoted)
	for _, tc := range []struct{ s, want string }{
		{"", `""`},
		{a64, `"` + a64 + `"`},
		{a64 + "b", `"` + a64 + `"... (65 bytes)`},
		{a64[1:] + "€" + "b", `"` + a64[1:] + `"... (67 bytes)`},
		{strings.Repeat("\x80", 100), `""... (100 bytes)`},
	} {
		if got := quoted(tc.s); got != tc.want {
			t.Errorf("quoted(%.20q...) = %s, want %s", tc.s, got, tc.want)
		}
	}
}

// FuzzVerifyWebhook: any header and body is refused or accepted without a
// panic, and accepted only with a matching signature.
func FuzzVerifyWebhook(f *testing.F) {
	f.Add("t=1800000000,v1="+sign("s", 1_800_000_000, "b"), []byte("b"))
	f.Add("t=,v1=", []byte{})
	f.Add("t=-1,v1=00,t=5", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		now := time.Unix(1_800_000_000, 0)
		if err := VerifyWebhook([]byte("s"), header, body, now, 5*time.Minute); err == nil {
			ok := false
			for ts := now.Unix() - 300; ts <= now.Unix()+300 && !ok; ts++ {
				ok = len(header) > 0 && containsSig(header, sign("s", ts, string(body)))
			}
			if !ok {
				t.Fatalf("accepted %q without a matching signature", header)
			}
		}
	})
}

// containsSig: hex is decoded in either case.
func containsSig(header, sig string) bool { return strings.Contains(strings.ToLower(header), sig) }

// TestVerifyWebhookRefusesNoSecret: a receiver whose secret is empty (an
// environment variable not set, as in README's example) must refuse every
// request: anyone can compute the HMAC with an empty key, so accepting
// one accepted forged requests.
func TestVerifyWebhookRefusesNoSecret(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ts := now.Unix()
	forged := fmt.Sprintf("t=%d,v1=%s", ts, sign("", ts, `{"events":[]}`))
	for _, secret := range [][]byte{nil, {}} {
		err := VerifyWebhook(secret, forged, []byte(`{"events":[]}`), now, 5*time.Minute)
		if !errors.Is(err, ErrWebhookSignature) {
			t.Errorf("secret %q: a request signed with the empty key: %v, want ErrWebhookSignature", secret, err)
		}
	}
}

// TestVerifyWebhookEchoBounded: a refusal quotes at most the start of
// what the request sent: a receiver that logs it does not log a
// megabyte header (or timestamp) an attacker sent.
func TestVerifyWebhookEchoBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	huge := strings.Repeat("\x01", 1<<20)
	for _, header := range []string{huge, "t=" + huge + ",v1=00"} {
		err := VerifyWebhook([]byte("s"), header, []byte("b"), now, 5*time.Minute)
		if !errors.Is(err, ErrWebhookSignature) {
			t.Fatalf("%v, want ErrWebhookSignature", err)
		}
		if n := len(err.Error()); n > 512 {
			t.Errorf("the refusal is %d bytes long: %.120s...", n, err)
		}
	}
}
