package sqlstore

import "fmt"

// PoolFull returns err, the error of a wait for a connection of the pool
// of level (a read level's name: "replica-0", ..., "primary") that ended
// with its context while all conns connections were in use, saying so:
// a bare "context deadline exceeded" did not tell that the call never
// reached the database, nor what to look at.
func PoolFull(level string, conns int, err error) error {
	return fmt.Errorf("no connection to the %s within the deadline: all %d connections of its pool were in use (the database answers too slowly for the load, or store.max_conns is too small for it): %w",
		level, conns, err)
}
