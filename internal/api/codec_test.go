package api

import (
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// FuzzStrictJSON: any body decodes or fails with an error; never a panic.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{`{"table":"t","key":"aw==","vaule":"eA=="}`, `{"mutations":[{"op":"DELETE"}]}`,
		`{"name":"x","failureMode":"independent"}`, `{"name":"x","visibilityWindowMs":"1"}`, `{`, ``} {
		f.Add([]byte(s))
	}
	c := strictJSON{"json"}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range []any{&wailv1.WriteRequest{}, &wailv1.CreateTableRequest{}, &wailv1.SubscribeRequest{}} {
			if err := c.Unmarshal(b, m); err == nil {
				if _, err := c.Marshal(m); err != nil {
					t.Fatalf("decoded %q but cannot encode it: %v", b, err)
				}
			}
		}
	})
}
