package kafka

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestSASL authenticates with each mechanism against a kfake cluster that
// requires SASL, and fails with a wrong password.
func TestSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			brokers := fakeBrokers(t, kfake.EnableSASL(), kfake.Superuser(mech, "wail", "s3cret"))
			l := openLog(t, brokers, func(o *Options) {
				o.SASL = SASL{Mechanism: mech, User: "wail", Password: "s3cret"}
			})
			ctx := testCtx(t, 10*time.Second)
			if err := l.CreateTopic(ctx, "sasl", 1, intentlog.TopicOptions{}); err != nil {
				t.Fatalf("CreateTopic with the right password: %v", err)
			}
			if err := l.Append(ctx, "sasl", []*intentlog.Record{{Key: []byte("k"), Value: []byte("v")}}); err != nil {
				t.Fatalf("Append with the right password: %v", err)
			}
			bad := openLog(t, brokers, func(o *Options) {
				o.SASL = SASL{Mechanism: mech, User: "wail", Password: "wrong"}
			})
			short, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if _, err := bad.Partitions(short, "sasl"); err == nil {
				t.Fatal("Partitions with a wrong password: no error")
			}
		})
	}
}

// TestOptionsNeverShowPassword: printing Options in any verb hides it.
func TestOptionsNeverShowPassword(t *testing.T) {
	o := Options{Brokers: []string{"b:9092"}, SASL: SASL{Mechanism: "PLAIN", User: "u", Password: "hunter2"}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, o); strings.Contains(s, "hunter2") {
			t.Errorf("%s shows the password: %s", verb, s)
		}
	}
}

func TestOptionsInvalid(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]Options{
		"no brokers":          {},
		"sasl mechanism":      {SASL: SASL{Mechanism: "GSSAPI"}},
		"compression":         {Compression: "brotli"},
		"replication factor":  {ReplicationFactor: -2},
		"missing CA file":     {TLSCAFile: filepath.Join(dir, "missing.pem")},
		"CA file without PEM": {TLSCAFile: junk},
		"cert without key":    {TLSCertFile: junk},
		"bad key pair":        {TLSCertFile: junk, TLSKeyFile: junk},
	} {
		if name != "no brokers" {
			o.Brokers = []string{"127.0.0.1:1"}
		}
		l, err := Open(context.Background(), o)
		if err == nil {
			_ = l.Close()
			t.Errorf("%s: Open succeeded", name)
		} else if !strings.HasPrefix(err.Error(), "kafka: open: ") {
			t.Errorf("%s: error %q does not name the operation", name, err)
		}
	}
}

// TestAppendBrokerDown: with no broker to talk to, operations return by the
// caller's deadline instead of hanging.
func TestAppendBrokerDown(t *testing.T) {
	t.Run("closed port", func(t *testing.T) {
		l := openLog(t, []string{closedAddr(t)}, nil)
		checkPrompt(t, func(ctx context.Context) error {
			return l.Append(ctx, "t", []*intentlog.Record{{Key: []byte("k"), Value: []byte("v")}})
		})
		checkPrompt(t, func(ctx context.Context) error { return l.CreateTopic(ctx, "t", 1, intentlog.TopicOptions{}) })
	})
	t.Run("broker gone after a successful append", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		l := openLog(t, c.ListenAddrs(), nil)
		ctx := testCtx(t, 10*time.Second)
		if err := l.CreateTopic(ctx, "t", 2, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, "t", []*intentlog.Record{{Key: []byte("k"), Value: []byte("v")}}); err != nil {
			t.Fatal(err)
		}
		c.Close()
		checkPrompt(t, func(ctx context.Context) error {
			return l.Append(ctx, "t", []*intentlog.Record{{Key: []byte("k"), Value: []byte("v2")}})
		})
		if err := l.Close(); err != nil {
			t.Errorf("Close with the broker gone: %v", err)
		}
	})
}

// checkPrompt runs op with a 300 ms deadline and wants an error within 2 s.
func checkPrompt(t *testing.T, op func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := op(ctx)
	took := time.Since(start)
	if err == nil {
		t.Fatal("no error without a broker")
	}
	if took > 2*time.Second {
		t.Errorf("returned after %v, want about the 300ms deadline: %v", took, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Logf("error (not DeadlineExceeded, acceptable): %v", err)
	}
}
