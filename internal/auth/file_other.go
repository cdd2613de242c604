//go:build !unix

package auth

import "os"

func inode(os.FileInfo) any { return nil }

// checkMode: file modes do not say who may write here.
func checkMode(string, os.FileInfo, error, os.FileMode) error { return nil }

// SecretModeProblem: file modes do not say who may read here.
func SecretModeProblem(string, os.FileInfo) string { return "" }
