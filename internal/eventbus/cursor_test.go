package eventbus

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	for _, offs := range [][]int64{{0}, {0, 0, 0}, {1, 127, 128, 1 << 40}, {math.MaxInt64}, make([]int64, 1024)} {
		s := Cursor{Table: "orders", Offsets: offs}.String()
		got, err := ParseCursor(s, "orders", int32(len(offs)))
		if err != nil || !slices.Equal(got.Offsets, offs) || got.Table != "orders" {
			t.Errorf("ParseCursor(%q) = %+v, %v; want %v", s, got, err, offs)
		}
		if !IsCursor(s) {
			t.Errorf("IsCursor(%q) = false", s)
		}
		if st, err := ParseStart(s); err != nil || st.Cursor != s {
			t.Errorf("ParseStart(%q) = %+v, %v", s, st, err)
		}
	}
}

// TestCursorGolden pins the text form of version 1: a server must decode
// every cursor it ever handed out.
func TestCursorGolden(t *testing.T) {
	t.Parallel()
	c := Cursor{Table: "orders", Offsets: []int64{0, 1, 300, 1 << 33}}
	path := filepath.Join("testdata", "cursor-v1.golden")
	if *update {
		if err := os.WriteFile(path, []byte(c.String()+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	golden := strings.TrimSpace(string(b))
	if c.String() != golden {
		t.Errorf("cursor encodes as %q, golden %q: a format change needs a new version", c.String(), golden)
	}
	got, err := ParseCursor(golden, "orders", 4)
	if err != nil || !slices.Equal(got.Offsets, c.Offsets) {
		t.Errorf("golden cursor decodes as %+v, %v", got, err)
	}
}

func TestCursorRefused(t *testing.T) {
	t.Parallel()
	good := Cursor{Table: "orders", Offsets: []int64{5, 6}}.String()
	raw, _ := base64.RawURLEncoding.DecodeString(good[1:])
	enc := func(b []byte) string { return "c" + base64.RawURLEncoding.EncodeToString(b) }
	flipped := slices.Clone(raw)
	flipped[len(flipped)-5] ^= 1
	v2 := slices.Clone(raw)
	v2[0] = 2
	tests := []struct {
		name, cursor, table string
		partitions          int32
		want                string
	}{
		{"not a cursor", "x123", "orders", 2, "does not start with"},
		{"not base64", "c!!!!", "orders", 2, "not base64url"},
		{"empty", "c", "orders", 2, "too short"},
		{"cut", enc(raw[:len(raw)-1]), "orders", 2, "checksum"},
		{"altered", enc(flipped), "orders", 2, "checksum"},
		{"newer version", enc(v2), "orders", 2, "unknown version 2"},
		{"other table", good, "users", 2, "another table"},
		{"other partition count", good, "orders", 3, "2 partitions, table \"orders\" has 3"},
	}
	for _, tc := range tests {
		_, err := ParseCursor(tc.cursor, tc.table, tc.partitions)
		if !errors.Is(err, ErrBadCursor) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseCursor = %v, want ErrBadCursor saying %q", tc.name, err, tc.want)
		}
	}
}

// FuzzCursor: decoding arbitrary text never panics or allocates what it
// is told; what decodes encodes back to the same text.
func FuzzCursor(f *testing.F) {
	f.Add(Cursor{Table: "t", Offsets: []int64{0, 7}}.String())
	f.Add(Cursor{Table: "t", Offsets: []int64{math.MaxInt64}}.String())
	f.Add("c")
	f.Add("cAQ")
	f.Fuzz(func(t *testing.T, s string) {
		c, sum, err := decodeCursor(s)
		if err != nil {
			return
		}
		if enc := encodeCursor(sum, c.Offsets); enc != s {
			t.Fatalf("%q decodes to %+v, which encodes as %q", s, c, enc)
		}
		for _, o := range c.Offsets {
			if o < 0 {
				t.Fatalf("negative offset from %q", s)
			}
		}
	})
}

// BenchmarkCursor: the cost of the cursor every event carries, by
// partition count.
func BenchmarkCursor(b *testing.B) {
	for _, n := range []int{8, 64, 1024} {
		offs := make([]int64, n)
		for i := range offs {
			offs[i] = int64(1e6 + i*1000)
		}
		b.Run(fmt.Sprintf("encode/%d", n), func(b *testing.B) {
			c := Cursor{Table: "orders", Offsets: offs}
			b.ReportAllocs()
			for b.Loop() {
				_ = c.String()
			}
		})
		b.Run(fmt.Sprintf("size/%d", n), func(b *testing.B) {
			for b.Loop() {
			}
			b.ReportMetric(float64(len(Cursor{Table: "orders", Offsets: offs}.String())), "bytes")
		})
	}
}
