package mysql

import "github.com/wail-cdc/wail/internal/store"

// The server refuses a packet longer than its max_allowed_packet, and a
// parameter of a prepared statement longer than that, however it is sent
// (Error 1105, "Parameter of prepared statement which is set through
// mysql_send_long_data() is longer than 'max_allowed_packet' bytes"): such
// a write can never be stored, and it fails the whole Apply, every write
// of a merged batch with it. So the store tells the proxy the largest key
// and value (and document) it takes (store.MutationLimiter), and the
// proxy refuses larger ones up front, as an invalid argument naming the
// setting, rather than logging an intent, aborting it and telling the
// client (and every writer merged with it) to retry. Before, nothing said
// so, and the driver packed up to 64 MiB into one packet whatever the
// server took: on a server with a smaller max_allowed_packet (MariaDB's
// default is 16 MiB) a batch of values each well below it could be
// refused too. The driver now sends packets of at most the server's
// size, large values as long data in packets of their own.
//
// The setting is read once, at Open: after a change on the server, open
// the store again (restart the process).

var _ store.MutationLimiter = (*Store)(nil)

// MutationLimit is the largest len(Key)+len(Value) of a mutation that
// Apply takes, and the largest Doc: the primary's max_allowed_packet, the
// most one parameter may hold (the key is a parameter of its own, at most
// 4096 bytes: the sum is a little stricter than the server).
func (s *Store) MutationLimit() (int, string) {
	return s.packet, "the MariaDB/MySQL server's max_allowed_packet"
}
