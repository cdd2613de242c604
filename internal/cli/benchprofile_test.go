package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestBenchProfiles: --cpuprofile, --mutexprofile, --blockprofile and
// --memprofile each
// write a pprof file (gzip-compressed protobuf) when the bench ends, and
// the sampling rates they set are reset.
func TestBenchProfiles(t *testing.T) {
	dir := t.TempDir()
	var p profileFlags
	fl := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	p.register(fl)
	names := map[string]string{}
	var args []string
	for _, kind := range []string{"cpu", "mutex", "block", "mem"} {
		names[kind] = filepath.Join(dir, kind+".pprof")
		args = append(args, "--"+kind+"profile", names[kind])
	}
	if err := fl.Parse(args); err != nil {
		t.Fatal(err)
	}
	stop, err := p.start()
	if err != nil {
		t.Fatal(err)
	}
	if got := runtime.SetMutexProfileFraction(-1); got != 5 {
		t.Errorf("mutex profile fraction %d while profiling, want 5", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := runtime.SetMutexProfileFraction(-1); got != 0 {
		t.Errorf("mutex profile fraction %d after the bench, want 0", got)
	}
	for kind, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("--%sprofile: %v", kind, err)
		}
		if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
			t.Errorf("--%sprofile: %d bytes, not a gzip-compressed pprof profile", kind, len(b))
		}
	}
}

// TestBenchProfileUnwritable: a profile that cannot be created is an
// error naming its flag, before the bench starts.
func TestBenchProfileUnwritable(t *testing.T) {
	p := profileFlags{cpu: filepath.Join(t.TempDir(), "missing", "cpu.pprof")}
	if _, err := p.start(); err == nil || !strings.Contains(err.Error(), "--cpuprofile") {
		t.Fatalf("start = %v, want an error naming --cpuprofile", err)
	}
}
