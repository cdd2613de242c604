package eventbus

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
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
		for _, v2 := range []struct {
			after   uint64
			created int64
			topic   uint64
		}{{1, 0, 0}, {1 << 63, 0, 0}, {0, 1, 0}, {0, math.MaxInt64, 0}, {7, 1_796_000_000_000_000, 0},
			{0, 0, 1}, {0, 0, math.MaxUint64}, {7, 1_796_000_000_000_000, 0x0123456789abcdef}, {1 << 63, 0, 1 << 63}} {
			s := Cursor{Table: "orders", Offsets: offs, AfterVersion: v2.after, Created: v2.created, Topic: v2.topic}.String()
			got, err := ParseCursor(s, "orders", int32(len(offs)))
			if err != nil || !slices.Equal(got.Offsets, offs) || got.AfterVersion != v2.after || got.Created != v2.created || got.Topic != v2.topic {
				t.Errorf("ParseCursor(%q) = %+v, %v; want %v after version %d created %d topic %x", s, got, err, offs, v2.after, v2.created, v2.topic)
			}
		}
	}
}

// TestCursorGolden pins the text forms of versions 1 to 4: a server must
// decode every cursor it ever handed out.
func TestCursorGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		c    Cursor
	}{
		{"cursor-v1", Cursor{Table: "orders", Offsets: []int64{0, 1, 300, 1 << 33}}},
		{"cursor-v2", Cursor{Table: "orders", Offsets: []int64{0, 1, 300, 1 << 33}, AfterVersion: 1 << 52}},
		{"cursor-v3", Cursor{Table: "orders", Offsets: []int64{0, 1, 300, 1 << 33}, AfterVersion: 1 << 52, Created: 1_796_000_000_000_000}},
		{"cursor-v4", Cursor{Table: "orders", Offsets: []int64{0, 1, 300, 1 << 33}, AfterVersion: 1 << 52, Created: 1_796_000_000_000_000,
			Topic: 0x9e3779b97f4a7c15}},
	} {
		t.Run(tc.name, func(t *testing.T) { testCursorGolden(t, tc.name, tc.c) })
	}
}

func testCursorGolden(t *testing.T, name string, c Cursor) {
	path := filepath.Join("testdata", name+".golden")
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
	if err != nil || !slices.Equal(got.Offsets, c.Offsets) || got.AfterVersion != c.AfterVersion || got.Created != c.Created || got.Topic != c.Topic {
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
	v5 := slices.Clone(raw)
	v5[0] = 5
	// version v of the good cursor's body, with tail after its offsets.
	vn := func(v byte, tail ...byte) string {
		body := append(append([]byte{v}, raw[1:len(raw)-4]...), tail...)
		return enc(binary.BigEndian.AppendUint32(body, crc32.Checksum(body, castagnoli)))
	}
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
		{"newer version", enc(v5), "orders", 2, "unknown version 5"},
		{"version 0", vn(0), "orders", 2, "unknown version 0"},
		{"version 2 without its after-version", vn(2), "orders", 2, "bad after-version"},
		{"version 2 after version 0", vn(2, 0), "orders", 2, "bad after-version"},
		{"version 2 with trailing bytes", vn(2, 1, 1), "orders", 2, "trailing bytes"},
		{"version 3 without its creation time", vn(3, 0), "orders", 2, "bad table creation time"},
		{"version 3 created at 0", vn(3, 0, 0), "orders", 2, "bad table creation time"},
		{"version 3 with trailing bytes", vn(3, 0, 1, 1), "orders", 2, "trailing bytes"},
		{"version 4 without its creation time", vn(4, 0), "orders", 2, "bad table creation time"},
		{"version 4 without its topic fingerprint", vn(4, 0, 0), "orders", 2, "bad topic fingerprint"},
		{"version 4 with a short topic fingerprint", vn(4, 0, 0, 1, 2, 3, 4, 5, 6, 7), "orders", 2, "bad topic fingerprint"},
		{"version 4 with a zero topic fingerprint", vn(4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), "orders", 2, "bad topic fingerprint"},
		{"version 4 with trailing bytes", vn(4, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9), "orders", 2, "trailing bytes"},
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
	f.Add(Cursor{Table: "t", Offsets: []int64{3}, AfterVersion: 1 << 50}.String())
	f.Add(Cursor{Table: "t", Offsets: []int64{3}, Created: 1 << 50}.String())
	f.Add(Cursor{Table: "t", Offsets: []int64{3, 9}, AfterVersion: 5, Created: 1 << 50, Topic: 0x0123456789abcdef}.String())
	f.Add(Cursor{Table: "t", Offsets: []int64{3}, Topic: 1}.String())
	f.Add("c")
	f.Add("cAQ")
	f.Fuzz(func(t *testing.T, s string) {
		c, sum, err := decodeCursor(s)
		if err != nil {
			return
		}
		if enc := encodeCursor(sum, c.Offsets, c.AfterVersion, uint64(c.Created), c.Topic); enc != s {
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

// TestCursorDecodeBounds: what decodeCursor accepts and refuses at each of
// its bounds, with well-formed checksums so that each check is reached: a
// cursor of fewer bytes than the smallest one (no partitions) is too
// short, the smallest decodes; a partition count above the bytes left or
// above maxCursorPartitions is refused before anything is allocated, the
// most partitions allowed decode; an offset above math.MaxInt64, a
// non-shortest uvarint and bytes after the last offset are refused.
func TestCursorDecodeBounds(t *testing.T) {
	t.Parallel()
	sum := tableSum("orders")
	// seal makes the text form of body: its checksum appended, base64url.
	seal := func(body []byte) string {
		b := binary.BigEndian.AppendUint32(slices.Clone(body), crc32.Checksum(body, castagnoli))
		return cursorPrefix + base64.RawURLEncoding.EncodeToString(b)
	}
	head := binary.BigEndian.AppendUint32([]byte{cursorVersion1}, sum) // version and table: 5 bytes
	withCount := func(n uint64, rest ...byte) []byte {
		return append(binary.AppendUvarint(slices.Clone(head), n), rest...)
	}
	most := withCount(maxCursorPartitions, make([]byte, maxCursorPartitions)...)
	tests := []struct {
		name string
		body []byte
		want string // "" if it decodes
		n    int    // partitions, when it decodes
	}{
		{"version only", []byte{cursorVersion1}, "too short", 0},
		{"no partition count", head, "too short", 0},
		{"one byte short", head[:4], "too short", 0},
		{"no partitions", withCount(0), "", 0},
		{"a count above the bytes left", withCount(3, 1, 2), "bad partition count", 0},
		{"the most partitions", most, "", maxCursorPartitions},
		{"one partition more", withCount(maxCursorPartitions+1, make([]byte, maxCursorPartitions+1)...), "bad partition count", 0},
		{"an offset above MaxInt64", binary.AppendUvarint(withCount(1), math.MaxInt64+1), "bad offset of partition 0", 0},
		{"a non-shortest offset", withCount(1, 0x80, 0x00), "bad offset of partition 0", 0},
		{"a non-shortest count", append(slices.Clone(head), 0x81, 0x00, 7), "bad partition count", 0},
		{"trailing bytes", withCount(1, 7, 7), "trailing bytes", 0},
	}
	for _, tc := range tests {
		c, gotSum, err := decodeCursor(seal(tc.body))
		switch {
		case tc.want == "" && (err != nil || len(c.Offsets) != tc.n || gotSum != sum):
			t.Errorf("%s: %d partitions, table sum %x, %v; want %d partitions of orders", tc.name, len(c.Offsets), gotSum, err, tc.n)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

// TestCursorEncodeAllocs: a stream sends a cursor with every event, so
// encoding one of up to 8 partitions allocates only its string (the
// buffers stay on the stack), at the longest offsets too, and in the
// longest version (4: after-version, creation time, topic fingerprint).
func TestCursorEncodeAllocs(t *testing.T) {
	for _, n := range []int{1, 8} {
		offs := make([]int64, n)
		for i := range offs {
			offs[i] = math.MaxInt64
		}
		for _, c := range []Cursor{{Table: "orders", Offsets: offs},
			{Table: "orders", Offsets: offs, AfterVersion: math.MaxUint64, Created: math.MaxInt64, Topic: math.MaxUint64}} {
			if a := testing.AllocsPerRun(100, func() { cursorSink = c.String() }); a != 1 {
				t.Errorf("%d partitions, %+v: %v allocations, want 1 (the string)", n, c, a)
			}
		}
	}
}

// TestTopicPrint: a topic id's fingerprint folds both halves (a topic
// whose id differs from another's in either half has another one), is
// never 0 for an id, and is 0 for none.
func TestTopicPrint(t *testing.T) {
	t.Parallel()
	var id intentlog.TopicID
	if TopicPrint(id) != 0 {
		t.Errorf("the zero id: fingerprint %x, want 0", TopicPrint(id))
	}
	for i := range id {
		id[i] = byte(i + 1)
	}
	base := TopicPrint(id)
	for i := range id {
		other := id
		other[i] ^= 0x40
		if TopicPrint(other) == base {
			t.Errorf("ids differing in byte %d have the same fingerprint %x", i, base)
		}
	}
	same := intentlog.TopicID{1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8} // halves equal: XOR 0
	if TopicPrint(same) == 0 {
		t.Errorf("an id whose halves are equal: fingerprint 0, the value of none")
	}
}

var cursorSink string

// TestCRC32C: the checksum computed by hand is crc32's Castagnoli.
func TestCRC32C(t *testing.T) {
	t.Parallel()
	b := make([]byte, 300)
	for i := range b {
		b[i] = byte(i * 7)
	}
	for _, n := range []int{0, 1, 5, 64, 300} {
		if got, want := crc32c(b[:n]), crc32.Checksum(b[:n], castagnoli); got != want {
			t.Errorf("%d bytes: %08x, want %08x", n, got, want)
		}
		if got, want := crc32c(string(b[:n])), crc32.Checksum(b[:n], castagnoli); got != want {
			t.Errorf("%d bytes as a string: %08x, want %08x", n, got, want)
		}
	}
}
