package embedded

import (
	"encoding/binary"
	"hash/crc32"
	"io"
)

// The search for the next batch after damage (findBatch) tries every
// magic byte of the region, and a region may hold many: a client's value
// is any bytes. Reading each candidate's claimed frame to check its CRC
// made the search quadratic (a 1 MiB value of headers claiming frames to
// the end of a 64 MiB segment: terabytes read). So the CRC of a claimed
// frame is computed from CRC-32C sums of the region's prefixes, kept every
// crcStep bytes (read once, as far as a frame claims), combined in
// GF(2)[x] as zlib's crc32_combine does: a candidate costs at most
// 2*crcStep bytes read, and only one whose CRC matches is read whole (a
// value can hold such frames with bad records, each crafted to match its
// CRC; damage or chance does not make them).

// crcStep is the distance between two prefix sums: 4 bytes of sums per
// crcStep bytes of region (1/64 here).
const crcStep = 256

// crcPoly is the Castagnoli polynomial, reflected.
const crcPoly = 0x82f63b78

// crcMul returns a*b modulo crcPoly (reflected: bit 31 is x^0).
func crcMul(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ crcPoly
		} else {
			b >>= 1
		}
	}
	return p
}

// crcX2 holds x^(2^k) modulo crcPoly.
var crcX2 = func() (t [64]uint32) {
	t[0] = 1 << 30 // x^1
	for k := 1; k < len(t); k++ {
		t[k] = crcMul(t[k-1], t[k-1])
	}
	return t
}()

// crcShift returns x^(8n) modulo crcPoly: appending n bytes multiplies a
// CRC's contribution by it.
func crcShift(n int64) uint32 {
	p := uint32(1) << 31 // x^0
	for k := 3; n != 0; n, k = n>>1, k+1 {
		if n&1 != 0 {
			p = crcMul(crcX2[k%len(crcX2)], p)
		}
	}
	return p
}

// crcCombine returns the CRC-32C of A followed by B from theirs and B's
// length.
func crcCombine(crcA, crcB uint32, lenB int64) uint32 {
	return crcMul(crcShift(lenB), crcA) ^ crcB
}

// crcSuffix returns the CRC-32C of B from those of A followed by B and of
// A, and B's length.
func crcSuffix(crcAB, crcA uint32, lenB int64) uint32 {
	return crcMul(crcShift(lenB), crcA) ^ crcAB
}

// crcPrefixes gives the CRC-32C of any range of [from, limit) of r.
type crcPrefixes struct {
	r           io.ReaderAt
	from, limit int64
	sums        []uint32 // sums[k]: CRC-32C of [from, from+k*crcStep)
	buf         []byte
}

func newCRCPrefixes(r io.ReaderAt, from, limit int64) *crcPrefixes {
	return &crcPrefixes{r: r, from: from, limit: limit, sums: []uint32{0}}
}

// extend computes the sums up to sums[k] (k*crcStep <= limit-from).
func (c *crcPrefixes) extend(k int) error {
	for len(c.sums) <= k {
		at := c.from + int64(len(c.sums)-1)*crcStep
		n := min(int64(readChunk), int64(k+1-len(c.sums))*crcStep)
		if c.buf == nil {
			c.buf = make([]byte, readChunk)
		}
		b := c.buf[:n]
		if err := readFull(c.r, b, at); err != nil {
			return err
		}
		sum := c.sums[len(c.sums)-1]
		for ; len(b) > 0; b = b[crcStep:] {
			sum = crc32.Update(sum, castagnoli, b[:crcStep])
			c.sums = append(c.sums, sum)
		}
	}
	return nil
}

// read returns the CRC-32C of [a, b), read directly (b-a is small).
func (c *crcPrefixes) read(a, b int64) (uint32, error) {
	p := make([]byte, b-a)
	if err := readFull(c.r, p, a); err != nil {
		return 0, err
	}
	return crc32.Checksum(p, castagnoli), nil
}

// sum returns the CRC-32C of [a, b), from <= a <= b <= limit.
func (c *crcPrefixes) sum(a, b int64) (uint32, error) {
	ka := int((a - c.from + crcStep - 1) / crcStep) // first step at or after a
	kb := int((b - c.from) / crcStep)               // last step at or before b
	if ka >= kb {
		return c.read(a, b)
	}
	if err := c.extend(kb); err != nil {
		return 0, err
	}
	pa, pb := c.from+int64(ka)*crcStep, c.from+int64(kb)*crcStep
	head, err := c.read(a, pa)
	if err != nil {
		return 0, err
	}
	mid := crcSuffix(c.sums[kb], c.sums[ka], pb-pa)
	tail, err := c.read(pb, b)
	if err != nil {
		return 0, err
	}
	return crcCombine(crcCombine(head, mid, pb-pa), tail, b-pb), nil
}

// mayStart reports whether the batch header at pos, in [from, limit),
// claims a frame that fits before limit, with a base offset of at least
// minBase, a possible record count and a CRC that matches the claimed
// bytes: what validBatchAt then checks in full. hdr is a buffer of
// batchHeaderLen bytes.
func (c *crcPrefixes) mayStart(pos, minBase int64, hdr []byte) (bool, error) {
	if c.limit-pos < batchHeaderLen {
		return false, nil
	}
	if err := readFull(c.r, hdr, pos); err != nil {
		return false, err
	}
	size, err := frameSize(hdr)
	if err != nil || size > c.limit-pos {
		return false, nil
	}
	base, count := int64(binary.BigEndian.Uint64(hdr[9:])), int64(binary.BigEndian.Uint32(hdr[17:]))
	if base < 0 || base < minBase || count == 0 || count > (size-batchHeaderLen)/minRecordLen {
		return false, nil
	}
	sum, err := c.sum(pos+9, pos+size)
	return err == nil && sum == binary.BigEndian.Uint32(hdr[5:]), err
}

// readFull reads len(p) bytes at off (io.EOF with all of them is no
// error).
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	return err
}
