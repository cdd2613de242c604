package intentlog

import (
	"context"
	"errors"
	"maps"
	"testing"
)

// plainLog keeps a group's offsets without epochs (the embedded log's
// part that the epoch helpers use).
type plainLog struct {
	committed map[int32]int64
	err       error // of Committed and Commit
	commits   []map[int32]int64
	readers   []int64 // offsets NewReader started at
}

func (l *plainLog) Commit(_ context.Context, _, _ string, offsets map[int32]int64) error {
	l.commits = append(l.commits, offsets)
	return l.err
}

func (l *plainLog) Committed(context.Context, string, string) (map[int32]int64, error) {
	if l.err != nil {
		return nil, l.err
	}
	return l.committed, nil
}

func (l *plainLog) NewReader(_ string, _ int32, offset int64) (Reader, error) {
	l.readers = append(l.readers, offset)
	return plainReader{}, nil
}

// epochLog is plainLog with epochs (Kafka's): the helpers must use the
// epoch methods, never the plain ones.
type epochLog struct {
	plainLog
	epochs       map[int32]EpochOffset
	epochCommits []map[int32]EpochOffset
	epochReaders []EpochOffset
}

func (l *epochLog) CommitEpochs(_ context.Context, _, _ string, offsets map[int32]EpochOffset) error {
	l.epochCommits = append(l.epochCommits, offsets)
	return l.err
}

func (l *epochLog) CommittedEpochs(context.Context, string, string) (map[int32]EpochOffset, error) {
	return l.epochs, l.err
}

func (l *epochLog) NewEpochReader(_ string, _ int32, at EpochOffset) (EpochReader, error) {
	l.epochReaders = append(l.epochReaders, at)
	return epochReader{}, nil
}

type plainReader struct{}

func (plainReader) Next(context.Context) ([]Record, error) { return nil, nil }
func (plainReader) Position() int64                        { return 0 }
func (plainReader) Close() error                           { return nil }

// epochReader answers EpochBefore(offset) with offset's low 32 bits as
// the epoch (negative offsets: the log's unknown epochs).
type epochReader struct{ plainReader }

func (epochReader) EpochBefore(offset int64) int32 { return int32(offset) }

// TestCommittedAt: a log with epochs answers its committed epochs; a
// plain one its offsets with epoch -1 (unknown); an error is the log's.
func TestCommittedAt(t *testing.T) {
	t.Parallel()
	fail := errors.New("store down")
	for _, tc := range []struct {
		name string
		l    GroupOffsets
		want map[int32]EpochOffset
		err  error
	}{
		{"plain", &plainLog{committed: map[int32]int64{0: 7, 3: 0}},
			map[int32]EpochOffset{0: {7, -1}, 3: {0, -1}}, nil},
		{"plain none", &plainLog{committed: map[int32]int64{}}, map[int32]EpochOffset{}, nil},
		{"plain failing", &plainLog{err: fail}, nil, fail},
		{"epochs", &epochLog{plainLog: plainLog{committed: map[int32]int64{0: 1}}, epochs: map[int32]EpochOffset{0: {7, 4}, 1: {9, -1}}},
			map[int32]EpochOffset{0: {7, 4}, 1: {9, -1}}, nil},
		{"epochs failing", &epochLog{plainLog: plainLog{err: fail}}, nil, fail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CommittedAt(context.Background(), tc.l, "g", "t")
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if tc.err != nil {
				if got != nil {
					t.Fatalf("failing, it answered %v", got)
				}
				return
			}
			if !maps.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCommitAt: a log with epochs commits them; a plain one only the
// offsets.
func TestCommitAt(t *testing.T) {
	t.Parallel()
	offsets := map[int32]EpochOffset{0: {7, 4}, 2: {3, -1}}
	ctx := context.Background()

	pl := &plainLog{}
	if err := CommitAt(ctx, pl, "g", "t", offsets); err != nil {
		t.Fatal(err)
	}
	if len(pl.commits) != 1 || !maps.Equal(pl.commits[0], map[int32]int64{0: 7, 2: 3}) {
		t.Fatalf("plain log: commits %v, want one of {0: 7, 2: 3}", pl.commits)
	}

	el := &epochLog{}
	if err := CommitAt(ctx, el, "g", "t", offsets); err != nil {
		t.Fatal(err)
	}
	if len(el.commits) != 0 || len(el.epochCommits) != 1 || !maps.Equal(el.epochCommits[0], offsets) {
		t.Fatalf("epoch log: plain commits %v, epoch commits %v; want only %v", el.commits, el.epochCommits, offsets)
	}

	fail := errors.New("store down")
	for _, l := range []GroupOffsets{&plainLog{err: fail}, &epochLog{plainLog: plainLog{err: fail}}} {
		if err := CommitAt(ctx, l, "g", "t", offsets); !errors.Is(err, fail) {
			t.Fatalf("%T failing: %v, want its error", l, err)
		}
	}
}

// TestReaderAt: a log with epochs starts an epoch reader validated by the
// epoch; a plain one a reader at the offset.
func TestReaderAt(t *testing.T) {
	t.Parallel()
	at := EpochOffset{Offset: 12, Epoch: 3}
	pl := &plainLog{}
	r, err := ReaderAt(pl, "t", 0, at)
	if err != nil || len(pl.readers) != 1 || pl.readers[0] != 12 {
		t.Fatalf("plain log: %v, readers at %v; want one at 12", err, pl.readers)
	}
	if _, ok := r.(EpochReader); ok {
		t.Fatal("plain log: an epoch reader")
	}
	el := &epochLog{}
	r, err = ReaderAt(el, "t", 0, at)
	if err != nil || len(el.readers) != 0 || len(el.epochReaders) != 1 || el.epochReaders[0] != at {
		t.Fatalf("epoch log: %v, plain readers at %v, epoch readers at %v; want one at %v", err, el.readers, el.epochReaders, at)
	}
	if _, ok := r.(EpochReader); !ok {
		t.Fatal("epoch log: not an epoch reader")
	}
}

// TestEpochBefore: an epoch reader's answer, any negative one as -1; a
// plain reader's -1 (unknown).
func TestEpochBefore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		r      Reader
		offset int64
		want   int32
	}{
		{epochReader{}, 5, 5},
		{epochReader{}, 1, 1},
		{epochReader{}, 0, 0}, // epoch 0: the first leader's, known
		{epochReader{}, -1, -1},
		{epochReader{}, -7, -1},
		{plainReader{}, 5, -1},
		{plainReader{}, 0, -1},
	} {
		if got := EpochBefore(tc.r, tc.offset); got != tc.want {
			t.Errorf("EpochBefore(%T, %d) = %d, want %d", tc.r, tc.offset, got, tc.want)
		}
	}
}

// plainCommitter is a FencedCommitter without epochs.
type plainCommitter struct {
	offset  int64
	ok      bool
	err     error
	commits []int64
}

func (c *plainCommitter) Commit(_ context.Context, offset int64) error {
	c.commits = append(c.commits, offset)
	return c.err
}

func (c *plainCommitter) Committed(context.Context) (int64, bool, error) {
	return c.offset, c.ok, c.err
}

// epochCommitter is a FencedEpochCommitter.
type epochCommitter struct {
	plainCommitter
	at           EpochOffset
	epochCommits []EpochOffset
}

func (c *epochCommitter) CommitEpoch(_ context.Context, at EpochOffset) error {
	c.epochCommits = append(c.epochCommits, at)
	return c.err
}

func (c *epochCommitter) CommittedEpoch(context.Context) (EpochOffset, bool, error) {
	return c.at, c.ok, c.err
}

// TestFencedCommitterEpochs: CommitFenced and CommittedFenced commit and
// read the epoch through a FencedEpochCommitter, the offset alone (epoch
// -1 read back) through a plain FencedCommitter; errors are the
// committer's.
func TestFencedCommitterEpochs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	at := EpochOffset{Offset: 12, Epoch: 3}

	pc := &plainCommitter{offset: 12, ok: true}
	if err := CommitFenced(ctx, pc, at); err != nil || len(pc.commits) != 1 || pc.commits[0] != 12 {
		t.Fatalf("plain: %v, commits %v; want one of 12", err, pc.commits)
	}
	if got, ok, err := CommittedFenced(ctx, pc); err != nil || !ok || got != (EpochOffset{12, -1}) {
		t.Fatalf("plain: committed %v %v %v; want {12 -1} true", got, ok, err)
	}
	if _, ok, err := CommittedFenced(ctx, &plainCommitter{}); err != nil || ok {
		t.Fatalf("plain, none committed: ok %v, %v", ok, err)
	}

	ec := &epochCommitter{at: at, plainCommitter: plainCommitter{ok: true}}
	if err := CommitFenced(ctx, ec, at); err != nil || len(ec.commits) != 0 || len(ec.epochCommits) != 1 || ec.epochCommits[0] != at {
		t.Fatalf("epochs: %v, plain commits %v, epoch commits %v; want only %v", err, ec.commits, ec.epochCommits, at)
	}
	if got, ok, err := CommittedFenced(ctx, ec); err != nil || !ok || got != at {
		t.Fatalf("epochs: committed %v %v %v; want %v true", got, ok, err, at)
	}

	for _, c := range []FencedCommitter{&plainCommitter{err: ErrFenced}, &epochCommitter{plainCommitter: plainCommitter{err: ErrFenced}}} {
		if err := CommitFenced(ctx, c, at); !errors.Is(err, ErrFenced) {
			t.Fatalf("%T fenced: commit %v", c, err)
		}
		if _, _, err := CommittedFenced(ctx, c); !errors.Is(err, ErrFenced) {
			t.Fatalf("%T fenced: committed %v", c, err)
		}
	}
}

// TestOffsetsEpochs: WithoutEpochs gives every offset epoch -1;
// PlainOffsets drops the epochs; an empty map stays empty.
func TestOffsetsEpochs(t *testing.T) {
	t.Parallel()
	plain := map[int32]int64{0: 0, 1: 9, 5: 1 << 40}
	with := WithoutEpochs(plain)
	if !maps.Equal(with, map[int32]EpochOffset{0: {0, -1}, 1: {9, -1}, 5: {1 << 40, -1}}) {
		t.Fatalf("WithoutEpochs: %v", with)
	}
	if got := PlainOffsets(map[int32]EpochOffset{0: {0, 4}, 1: {9, -1}, 5: {1 << 40, 2}}); !maps.Equal(got, plain) {
		t.Fatalf("PlainOffsets: %v, want %v", got, plain)
	}
	if len(WithoutEpochs(nil)) != 0 || len(PlainOffsets(nil)) != 0 {
		t.Fatal("empty offsets grew")
	}
}
