package memory_test

import (
	"testing"

	"kintogo/internal/storage"
	"kintogo/internal/storage/memory"
	"kintogo/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage { return memory.New() })
}
