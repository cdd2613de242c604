package config

import (
	"strings"
	"testing"
)

// TestSchemaRegistryURLCredentials: an external registry's URL with
// credentials in it (https://user:password@host) is refused, naming
// schema_registry.username and password, which are the place for them
// (the URL is shown in errors, logs and `wail doctor`); the refusal and
// every other complaint about the URL never show the password.
func TestSchemaRegistryURLCredentials(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, yaml, wantErr string }{
		{"user and password", "schema_registry:\n  url: https://wail:S3CRETPW@registry:8081\n", "schema_registry.username and schema_registry.password"},
		{"user only", "schema_registry:\n  url: https://wail@registry:8081\n", "schema_registry.username and schema_registry.password"},
		{"not http, with a password", "schema_registry:\n  url: ftp://wail:S3CRETPW@registry\n", "is not an http:// or https:// URL"},
		{"http with tls, with a password", "schema_registry:\n  url: http://wail:S3CRETPW@registry\n  tls:\n    ca_file: ca.pem\n", "has credentials in it"},
		{"does not parse", "schema_registry:\n  url: \"http://wail:S3CRETPW@registry:port\"\n", "does not parse"},
	} {
		_, err := Load(write(t, tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: %v; want an error with %q", tc.name, err, tc.wantErr)
			continue
		}
		if strings.Contains(err.Error(), "S3CRETPW") {
			t.Errorf("%s: the error shows the password: %v", tc.name, err)
		}
	}
	c, err := Load(write(t, "schema_registry:\n  url: https://registry:8081/path\n  username: wail\n  password: S3CRETPW\n"))
	if err != nil || c.SchemaRegistry.URL != "https://registry:8081/path" {
		t.Errorf("credentials in their own keys: %v, %+v", err, c.SchemaRegistry)
	}
}

// TestConsoleAllowedOrigins: console.allowed_origins takes origins, as a
// browser's Origin header names them, and refuses what is not one.
func TestConsoleAllowedOrigins(t *testing.T) {
	t.Parallel()
	if _, err := Load(write(t, "console:\n  allowed_origins: [\"https://ops.example\", \"http://localhost:3000\"]\n")); err != nil {
		t.Errorf("origins: %v", err)
	}
	for _, bad := range []string{"ops.example", "https://ops.example/console", "ftp://ops.example", "https://u:p@ops.example", "*"} {
		if _, err := Load(write(t, "console:\n  allowed_origins: [\""+bad+"\"]\n")); err == nil || !strings.Contains(err.Error(), "is not an origin") {
			t.Errorf("%q: %v, want refused", bad, err)
		}
	}
}
