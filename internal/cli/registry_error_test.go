package cli

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

// TestRegistryErrorPlainText: a refusal without a Confluent JSON body (the
// API's 401, 403 and 429 on /registry are plain text) still says why.
func TestRegistryErrorPlainText(t *testing.T) {
	t.Parallel()
	const why = "token:ci lacks the admin permission for POST /registry/subjects/orders-value/versions (grant admin:*)"
	err := registryError(&sr.ResponseError{StatusCode: 403, Raw: []byte(why + "\n")})
	if err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("registryError = %v, want it to say %q", err, why)
	}
}
