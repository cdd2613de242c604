package cli

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestBenchProfiles: --cpuprofile, --mutexprofile, --blockprofile and
// --memprofile each
// write a pprof file (gzip-compressed protobuf) when the bench ends, the
// sampling rates they set are reset, and --trace writes an execution
// trace (Go's trace header) that has ended.
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
	traceFile := filepath.Join(dir, "bench.trace")
	args = append(args, "--trace", traceFile)
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
	if trace.IsEnabled() {
		t.Error("the execution trace still runs after the bench")
	}
	if b, err := os.ReadFile(traceFile); err != nil || !bytes.HasPrefix(b, []byte("go 1.")) {
		t.Errorf("--trace: %v, %.16q: not a Go execution trace", err, b)
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
	// a trace that cannot be created stops the CPU profile it started with
	dir := t.TempDir()
	p = profileFlags{cpu: filepath.Join(dir, "cpu.pprof"), trace: filepath.Join(dir, "missing", "bench.trace")}
	if _, err := p.start(); err == nil || !strings.Contains(err.Error(), "--trace") {
		t.Fatalf("start = %v, want an error naming --trace", err)
	}
	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		t.Fatalf("the CPU profile still runs after a failed start: %v", err)
	}
	pprof.StopCPUProfile()
}
