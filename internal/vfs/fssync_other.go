//go:build !linux

package vfs

import "fmt"

func openSyncfs(dir string) (FilesystemSync, error) {
	return nil, fmt.Errorf("syncfs %s: %w", dir, ErrFilesystemSyncUnsupported)
}
