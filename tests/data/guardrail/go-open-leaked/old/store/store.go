package store

import (
	"fmt"
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

func describe(path string) string {
	return fmt.Sprintf("store at %s", path)
}
