package vfs

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMemFilesystemSync: one filesystem sync makes every file's bytes and
// every directory entry durable, as syncfs(2) does; what is written after
// it is lost in a crash again.
func TestMemFilesystemSync(t *testing.T) {
	m := NewMem()
	if err := m.MkdirAll("/d/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"/d/a", "/d/sub/b"} {
		if err := WriteFile(m, name, []byte("data of "+name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, err := m.OpenFilesystemSync("/d")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(m, "/d/late", []byte("after the sync"), 0o644); err != nil {
		t.Fatal(err)
	}
	after := m.Crash()
	for _, name := range []string{"/d/a", "/d/sub/b"} {
		b, err := ReadFile(after, name)
		if err != nil || string(b) != "data of "+name {
			t.Errorf("%s after the crash: %q, %v", name, b, err)
		}
	}
	if _, err := ReadFile(after, "/d/late"); !os.IsNotExist(err) {
		t.Errorf("a file created after the sync survived the crash: %v", err)
	}
	if err := h.Sync(); err == nil {
		t.Error("Sync on a crashed MemFS succeeded")
	}
}

// TestOSFilesystemSync: where the operating system supports it (Linux >=
// 5.8), a filesystem sync of a real directory succeeds; elsewhere it says
// it is unsupported.
func TestOSFilesystemSync(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFile(Default, filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := Default.(FilesystemSyncer).OpenFilesystemSync(dir)
	if err != nil {
		t.Skipf("no filesystem sync here: %v", err)
	}
	defer h.Close()
	if err := h.Sync(); err != nil {
		t.Fatal(err)
	}
}
