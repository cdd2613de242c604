package cassandra

// The statements on a wail table (wail_<name>), in one place so that a
// test can check what each one reads against what the INSERT writes.

// insertStmt writes a row: every regular column, at the version as the
// write timestamp. Its values: key, value, version, deleted, schema_id,
// version.
func insertStmt(q string) string {
	return "INSERT INTO " + q + " (key, value, version, deleted, schema_id) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
}

// getStmt reads a row (Get).
func getStmt(q string) string {
	return "SELECT value, version, deleted, schema_id FROM " + q + " WHERE key = ?"
}

// versionStmt reads a key's version before its INSERT (writeKey), at the
// write consistency. It names every column the INSERT writes, although
// only the version is used: a read above ONE that finds the replicas
// apart repairs them (blocking read repair), but writes back only the
// columns the SELECT names. "SELECT version" would give a replica that
// missed a write that version's version cell and leave it the value,
// deleted and schema_id cells of an older write: a row that is neither
// write, which a Get at ONE then returns, and the resolver publishes
// under the newer version with the older value. WRITETIME(c) names column
// c as well (its cells are repaired: TestReadRepairOnTheCluster) without
// its bytes in the answer. Its columns: version, then the write times of
// value, deleted and schema_id (unused).
func versionStmt(q string) string {
	return "SELECT version, WRITETIME(value), WRITETIME(deleted), WRITETIME(schema_id) FROM " + q + " WHERE key = ?"
}

// scanStmt lists keys (ScanKeys) with the clause where (WHERE ... LIMIT
// ...), naming every column for the reason versionStmt gives (a scan runs
// at the strongest read level). Its columns: key, version, deleted, then
// the write times of value and schema_id (unused).
func scanStmt(q, where string) string {
	return "SELECT key, version, deleted, WRITETIME(value), WRITETIME(schema_id) FROM " + q + " " + where
}
