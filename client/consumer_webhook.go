package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// WebhookSignatureHeader is the header a webhook sink signs its requests
// in: "t=<unix seconds>,v1=<hex HMAC-SHA256>", the HMAC of "<t>.<body>"
// with the sink's secret.
const WebhookSignatureHeader = "Wail-Signature"

// ErrWebhookSignature: a webhook request's signature is missing, wrong or
// too old.
var ErrWebhookSignature = errors.New("webhook signature")

// VerifyWebhook checks a webhook sink's request: header is its
// Wail-Signature header, body its body as received (before any parsing).
// It refuses a signature that does not match (constant-time comparison)
// and one whose timestamp is further than tolerance from now (a replayed
// request; 5 minutes is a common choice). Deduplicate on the events'
// event_id as well: a sink delivers at least once. An empty secret is
// refused (anyone can sign with an empty key): check that it was loaded.
func VerifyWebhook(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return fmt.Errorf("%w: the secret to verify with is empty (not loaded?): every request is refused", ErrWebhookSignature)
	}
	var ts int64 = -1
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%w: bad timestamp %s", ErrWebhookSignature, quoted(v))
			}
			ts = n
		case "v1":
			sigs = append(sigs, v)
		}
	}
	if ts < 0 || len(sigs) == 0 {
		return fmt.Errorf("%w: header %s has no t= and v1= (is the sink's secret set?)", ErrWebhookSignature, quoted(header))
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %d is %s from now, beyond %s (a replay, or clocks apart)", ErrWebhookSignature, ts, d.Round(time.Second), tolerance)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(strconv.FormatInt(ts, 10) + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range sigs {
		if got, err := hex.DecodeString(s); err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches (wrong secret, or the body was changed)", ErrWebhookSignature)
}

// maxQuoted bounds what a refusal quotes of a request's header.
const maxQuoted = 64

// quoted is s quoted (%q) for an error: its first maxQuoted bytes (cut at
// a character's start), then its length, when it is longer. A receiver
// that logs its refusals would log a megabyte header whole, 4 bytes per
// control character.
func quoted(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:cut], len(s))
}
