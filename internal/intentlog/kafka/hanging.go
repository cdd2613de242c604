package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// ErrHanging: a partition's stable offset is held by a hanging transaction
// that this process could not abort (the error says why and what an
// operator can run instead).
var ErrHanging = errors.New("kafka: hanging transaction")

// openTxn is a transaction that DescribeProducers reports open on one
// partition.
type openTxn struct {
	pid        int64
	epoch      int16
	coordEpoch int32
	start      int64 // its first offset: the partition's stable offset is at most this
}

// coordView is what the transaction coordinator says of the transactional
// id that owns a producer id (found: it knows one).
type coordView struct {
	txnID string
	found bool
	pid   int64
	epoch int16
	state string
	parts kadm.TopicsSet
}

// hanging decides whether an open transaction on topic/partition is one
// its coordinator has finished: the markers were lost, and no one will
// ever end it (Kafka 4.x can lose them when a broker shuts down while it
// writes them). It is hanging when the coordinator has no transactional id
// for the producer any more, moved the id to another producer id, or is
// not working on a transaction of this producer epoch (or the next: the
// epoch that transaction version 2 writes markers with) that includes the
// partition. Transactions whose markers are being written (Prepare*) are
// never hanging.
func hanging(o openTxn, c coordView, topic string, partition int32) bool {
	if !c.found || c.pid != o.pid {
		return true
	}
	switch c.state {
	case "PrepareCommit", "PrepareAbort", "PrepareEpochFence":
		return c.epoch != o.epoch && c.epoch != o.epoch+1
	case "Ongoing":
		if c.epoch != o.epoch {
			return true
		}
		_, in := c.parts[topic][partition]
		return !in
	}
	return true // Empty, CompleteCommit, CompleteAbort, Dead
}

// Unhang looks for hanging transactions (see hanging; only those silent
// for Options.HangingAfter) that hold the stable offset of a partition
// which a reader wants to read from from up to end. It returns nil when
// there are none, or when the partition also has a transaction that is
// merely in flight (ask again later). Otherwise it reads the partition
// without isolation from from (or the first hanging record, if earlier)
// to end, and sorts what committed from what hangs, as read_committed
// readers will once Abort wrote abort markers, the way
// kafka-transactions.sh abort does (KIP-664). Abort needs the
// ClusterAction permission; without it, it fails with ErrHanging and
// names the command an operator can run.
func (l *Log) Unhang(ctx context.Context, topic string, partition int32, from, end int64) (*intentlog.Hanging, error) {
	ext := l.names.external(topic)
	txns, err := l.openTxns(ctx, ext, partition, time.Now().Add(-l.opts.HangingAfter))
	if err != nil || len(txns) == 0 {
		return nil, wrapHanging(ext, partition, err)
	}
	hangs := map[int64]openTxn{}
	for _, o := range txns {
		c, err := l.coordinatorView(ctx, o.pid)
		if err != nil {
			return nil, wrapHanging(ext, partition, err)
		}
		if hanging(o, c, ext, partition) {
			hangs[o.pid] = o
		}
	}
	if len(hangs) == 0 {
		return nil, nil
	}
	for _, o := range hangs {
		from = min(from, o.start) // the reader may start past them: they hold it all the same
	}
	h, err := l.readPast(ctx, ext, partition, from, end, hangs)
	if err != nil || h == nil {
		return nil, wrapHanging(ext, partition, err)
	}
	h.Abort = func(ctx context.Context) error {
		for _, o := range hangs {
			if err := l.abortMarker(ctx, ext, partition, o); err != nil {
				return wrapHanging(ext, partition, err)
			}
		}
		return nil
	}
	return h, nil
}

// offsetsPartition is the partition of __consumer_offsets (of n) that
// holds group's offsets: Kafka's Utils.abs(group.hashCode()) % n, where
// abs masks the sign bit.
func offsetsPartition(group string, n int32) int32 { return (javaHash(group) & 0x7fffffff) % n }

// unhangOffsets aborts the hanging transactions of the group's own
// producers (transactional ids "group.*", see Member) on the group's
// __consumer_offsets partition, which keep Committed from reading stable
// offsets. Their offsets are dropped: for wail's resolvers a committed
// offset is only where re-reading starts, and the event bus scan keeps a
// re-read from publishing twice. It reports whether it aborted any.
func (l *Log) unhangOffsets(ctx context.Context, group string) (bool, error) {
	const topic = "__consumer_offsets"
	n, err := l.partitionCount(ctx, topic)
	if err != nil {
		return false, wrapHanging(topic, -1, err)
	}
	part := offsetsPartition(group, n)
	txns, err := l.openTxns(ctx, topic, part, time.Now().Add(-l.opts.HangingAfter))
	if err != nil {
		return false, wrapHanging(topic, part, err)
	}
	aborted := false
	for _, o := range txns {
		c, err := l.coordinatorView(ctx, o.pid)
		if err != nil {
			return aborted, wrapHanging(topic, part, err)
		}
		if !c.found || !strings.HasPrefix(c.txnID, group+".") || !hanging(o, c, topic, part) {
			continue // not ours to end
		}
		if err := l.abortMarker(ctx, topic, part, o); err != nil {
			return aborted, wrapHanging(topic, part, err)
		}
		aborted = true
	}
	return aborted, nil
}

// javaHash is Java's String.hashCode, with which Kafka places a group on a
// __consumer_offsets partition.
func javaHash(s string) int32 {
	var h int32
	for _, c := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(c)
	}
	return h
}

func wrapHanging(topic string, partition int32, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("kafka: hanging transactions of %s/%d: %w", topic, partition, err)
}

// openTxns lists the transactions open on a partition that were last
// written before idleSince.
func (l *Log) openTxns(ctx context.Context, topic string, partition int32, idleSince time.Time) ([]openTxn, error) {
	set := kadm.TopicsSet{}
	set.Add(topic, partition)
	prods, err := l.adm.DescribeProducers(ctx, set)
	if err != nil {
		return nil, fmt.Errorf("describe producers: %w", err)
	}
	var out []openTxn
	var perr error
	prods.EachPartition(func(p kadm.DescribedProducersPartition) {
		if p.Err != nil && perr == nil {
			perr = p.Err
		}
	})
	prods.EachProducer(func(p kadm.DescribedProducer) {
		last := time.UnixMilli(p.LastTimestamp)
		if p.CurrentTxnStartOffset >= 0 && last.Before(idleSince) {
			out = append(out, openTxn{pid: p.ProducerID, epoch: p.ProducerEpoch, coordEpoch: p.CoordinatorEpoch,
				start: p.CurrentTxnStartOffset})
		}
	})
	if perr != nil {
		return nil, fmt.Errorf("describe producers: %w", perr)
	}
	return out, nil
}

// coordinatorView asks the coordinator about the transactional id that
// owns pid.
func (l *Log) coordinatorView(ctx context.Context, pid int64) (coordView, error) {
	listed, err := l.adm.ListTransactions(ctx, []int64{pid}, nil)
	if err != nil {
		return coordView{}, fmt.Errorf("list transactions of producer %d: %w", pid, err)
	}
	var ids []string
	for _, t := range listed.Sorted() {
		if t.ProducerID == pid {
			ids = append(ids, t.TxnID)
		}
	}
	if len(ids) == 0 {
		return coordView{}, nil
	}
	desc, err := l.adm.DescribeTransactions(ctx, ids...)
	if err != nil {
		return coordView{}, fmt.Errorf("describe transactions %v: %w", ids, err)
	}
	for _, d := range desc.Sorted() {
		if d.Err != nil {
			return coordView{}, fmt.Errorf("describe transaction %s: %w", d.TxnID, d.Err)
		}
		if d.ProducerID == pid {
			return coordView{txnID: d.TxnID, found: true, pid: d.ProducerID, epoch: d.ProducerEpoch, state: d.State, parts: d.Topics}, nil
		}
	}
	return coordView{}, nil
}

// abortMarker writes an abort marker for o on the partition.
func (l *Log) abortMarker(ctx context.Context, topic string, partition int32, o openTxn) error {
	resp, err := l.adm.WriteTxnMarkers(ctx, kadm.TxnMarkers{
		ProducerID: o.pid, ProducerEpoch: o.epoch, CoordinatorEpoch: o.coordEpoch,
		Topics: kadm.TopicsSet{topic: {partition: {}}},
	})
	if err == nil {
		resp.EachPartition(func(p kadm.TxnMarkersPartitionResponse) {
			if err == nil && p.Err != nil {
				err = p.Err
			}
		})
	}
	if err != nil {
		return fmt.Errorf("%w: write an abort marker for producer %d epoch %d: %w (an operator with ClusterAction can run: "+
			"kafka-transactions.sh --bootstrap-server ... abort --topic %s --partition %d --start-offset %d)",
			ErrHanging, o.pid, o.epoch, err, topic, partition, o.start)
	}
	return nil
}

// readPast reads the partition from from without isolation until it
// passed end and every transaction it saw ended, except the hanging ones:
// records of committed transactions (and of none) go to Committed, records
// of hangs to Records, those of aborted transactions nowhere. It returns
// nil when the partition stays quiet for readQuiet with a transaction
// still open that is not a hang: in flight, its outcome is not known yet.
func (l *Log) readPast(ctx context.Context, topic string, partition int32, from, end int64, hangs map[int64]openTxn) (*intentlog.Hanging, error) {
	cl, err := l.rawClient(topic, map[int32]kgo.Offset{partition: kgo.NewOffset().At(from)})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	s := sorter{hangs: hangs, open: map[int64][]intentlog.Record{}, next: from}
	for s.next < end || s.inFlight() {
		fctx, cancel := context.WithTimeout(ctx, readQuiet)
		fs := cl.PollFetches(fctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if errors.Is(fctx.Err(), context.DeadlineExceeded) {
			return nil, nil // a transaction in flight: not now
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = mapErr(err) })
		if ferr != nil {
			return nil, ferr
		}
		fs.EachRecord(s.add)
	}
	return s.result(), nil
}

// readQuiet is how long readPast waits for a transaction's marker.
const readQuiet = 5 * time.Second

// sorter sorts records read without isolation by their transactions' fate.
type sorter struct {
	hangs     map[int64]openTxn
	open      map[int64][]intentlog.Record // records of transactions not ended yet, by producer id
	committed []intentlog.Record
	next      int64 // the offset after the last record seen
}

// commitMarker is the key of a commit marker (version 0, type 1); an abort
// marker's type is 0.
var commitMarker = []byte{0, 0, 0, 1}

func (s *sorter) add(kr *kgo.Record) {
	s.take(fetched{
		pid: kr.ProducerID, control: kr.Attrs.IsControl(), txn: kr.Attrs.IsTransactional(),
		commit: kr.Attrs.IsControl() && string(kr.Key) == string(commitMarker),
		rec: intentlog.Record{Key: kr.Key, Value: kr.Value, Headers: fromKgoHeaders(kr.Headers),
			Partition: kr.Partition, Offset: kr.Offset, Timestamp: kr.Timestamp},
	})
}

// fetched is a record as the sorter needs it.
type fetched struct {
	pid                  int64
	control, txn, commit bool // a marker, a transaction's record, a commit marker
	rec                  intentlog.Record
}

func (s *sorter) take(f fetched) {
	if f.rec.Offset < s.next {
		return
	}
	s.next = f.rec.Offset + 1
	switch {
	case f.control:
		if f.commit {
			s.committed = append(s.committed, s.open[f.pid]...)
		}
		delete(s.open, f.pid) // a hang that its producer ended after all, too
	case f.txn:
		s.open[f.pid] = append(s.open[f.pid], f.rec)
	default:
		s.committed = append(s.committed, f.rec)
	}
}

// inFlight tells whether a transaction that is not a hang is still open.
func (s *sorter) inFlight() bool {
	for pid := range s.open {
		if _, hang := s.hangs[pid]; !hang {
			return true
		}
	}
	return false
}

// result: what committed, in offset order, and what still hangs.
func (s *sorter) result() *intentlog.Hanging {
	h := &intentlog.Hanging{Committed: s.committed}
	for _, recs := range s.open { // hangs only: inFlight is false
		h.Records = append(h.Records, recs...)
	}
	byOffset := func(a, b intentlog.Record) int { return cmp.Compare(a.Offset, b.Offset) }
	slices.SortFunc(h.Committed, byOffset)
	slices.SortFunc(h.Records, byOffset)
	return h
}
