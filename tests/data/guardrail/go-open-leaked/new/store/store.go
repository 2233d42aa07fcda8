package store

import (
	"fmt"
	"io"
	"os"
)

// Save writes the record and reports any failure.
func Save(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(data)
	if err != nil {
		return err
	}
	return f.Sync()
}

func Load(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

func describe(path string) string {
	return fmt.Sprintf("store at %s", path)
}
