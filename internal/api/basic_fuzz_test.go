package api

import (
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzBasicToken: any Basic credentials decode to user and token or an
// error, never a panic; what decodes re-encodes to the same bytes.
func FuzzBasicToken(f *testing.F) {
	for _, s := range []string{"admin:wail_0123456789abcdef_x", ":tok", "nocolon", "a:b:c", ""} {
		f.Add(base64.StdEncoding.EncodeToString([]byte(s)))
	}
	f.Add("!!!")
	f.Fuzz(func(t *testing.T, cred string) {
		user, tok, err := basicToken(cred)
		if err != nil {
			return
		}
		if strings.Contains(user, ":") {
			t.Fatalf("user %q has a colon", user)
		}
		b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if string(b) != user+":"+tok {
			t.Fatalf("%q decoded to %q and %q", b, user, tok)
		}
	})
}
